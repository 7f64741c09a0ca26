"""The preview space's words in English, French and German (``translate(lang, text)``, ``negotiate``).

The English sentence is the key; a missing translation falls back to English.
"""

from __future__ import annotations

from typing import Final

__all__ = ["LANGUAGES", "negotiate", "translate"]

LANGUAGES: Final = {"en": "English", "fr": "Français", "de": "Deutsch"}

_FR: Final[dict[str, str]] = {
    "Preview of your evidence": "Aperçu de vos justificatifs",
    "Skip to content": "Aller au contenu",
    "Language": "Langue",
    "A procedure portal asked for the documents below. Look at each one and say whether it may be sent. "
    "Only the documents you accept are sent.": (
        "Un portail de démarches a demandé les documents ci-dessous. Regardez chacun d'eux et dites s'il peut "
        "être envoyé. Seuls les documents que vous acceptez sont envoyés."
    ),
    "Issued by": "Délivré par",
    "Please decide before": "Veuillez décider avant le",
    "Document": "Document",
    "Annex": "Annexe",
    "Format": "Format",
    "Open the document": "Ouvrir le document",
    "May this document be sent?": "Ce document peut-il être envoyé ?",
    "Yes, send it": "Oui, l'envoyer",
    "No, do not send it": "Non, ne pas l'envoyer",
    "Confirm my decision": "Confirmer ma décision",
    "Please answer for every document.": "Veuillez répondre pour chaque document.",
    "This preview does not exist or is closed": "Cet aperçu n'existe pas ou est clos",
    "The link may be wrong, already used, or its time may have run out. Please start again from the "
    "procedure portal.": (
        "Le lien est peut-être erroné, déjà utilisé, ou son délai a expiré. Veuillez recommencer depuis le "
        "portail de démarches."
    ),
    "You are not the person these documents are about": "Vous n'êtes pas la personne concernée par ces documents",
    "You are logged in as": "Vous êtes connecté en tant que",
    "The documents are about someone else, so they are not shown, and nothing has been sent.": (
        "Les documents concernent une autre personne : ils ne sont pas affichés et rien n'a été envoyé."
    ),
    "If you are the applicant": "Si vous êtes le demandeur",
    "Log out, then log in again with your own eID.": "Déconnectez-vous, puis reconnectez-vous avec votre propre eID.",
    "Log out and log in again": "Se déconnecter et se reconnecter",
    "If you are not the applicant": "Si vous n'êtes pas le demandeur",
    "Go back to the procedure portal: nothing is sent, and the portal is told that the person who logged in "
    "here was not the applicant.": (
        "Retournez au portail de démarches : rien n'est envoyé, et le portail est informé que la personne "
        "connectée ici n'était pas le demandeur."
    ),
    "Your decision was recorded": "Votre décision a été enregistrée",
    "The documents you accepted are sent to the procedure portal.": (
        "Les documents que vous avez acceptés sont envoyés au portail de démarches."
    ),
    "You refused every document: none is sent.": "Vous avez refusé tous les documents : aucun n'est envoyé.",
    "Return to the procedure portal": "Retourner au portail de démarches",
    "Nothing is sent.": "Rien n'est envoyé.",
    "You can close this page and go back to the procedure portal.": (
        "Vous pouvez fermer cette page et retourner au portail de démarches."
    ),
    "The form expired; please try again.": "Le formulaire a expiré ; veuillez réessayer.",
    "The form was not acceptable.": "Le formulaire n'était pas acceptable.",
    "Logged in as": "Connecté en tant que",
}

_DE: Final[dict[str, str]] = {
    "Preview of your evidence": "Vorschau Ihrer Nachweise",
    "Skip to content": "Zum Inhalt springen",
    "Language": "Sprache",
    "A procedure portal asked for the documents below. Look at each one and say whether it may be sent. "
    "Only the documents you accept are sent.": (
        "Ein Verfahrensportal hat die folgenden Nachweise angefordert. Sehen Sie sich jeden an und entscheiden "
        "Sie, ob er gesendet werden darf. Nur die Nachweise, die Sie annehmen, werden gesendet."
    ),
    "Issued by": "Ausgestellt von",
    "Please decide before": "Bitte entscheiden Sie vor dem",
    "Document": "Nachweis",
    "Annex": "Anlage",
    "Format": "Format",
    "Open the document": "Nachweis öffnen",
    "May this document be sent?": "Darf dieser Nachweis gesendet werden?",
    "Yes, send it": "Ja, senden",
    "No, do not send it": "Nein, nicht senden",
    "Confirm my decision": "Entscheidung bestätigen",
    "Please answer for every document.": "Bitte entscheiden Sie für jeden Nachweis.",
    "This preview does not exist or is closed": "Diese Vorschau gibt es nicht oder sie ist geschlossen",
    "The link may be wrong, already used, or its time may have run out. Please start again from the "
    "procedure portal.": (
        "Der Link ist vielleicht falsch, schon benutzt oder abgelaufen. Bitte beginnen Sie erneut im Verfahrensportal."
    ),
    "You are not the person these documents are about": (
        "Sie sind nicht die Person, um die es in diesen Nachweisen geht"
    ),
    "You are logged in as": "Sie sind angemeldet als",
    "The documents are about someone else, so they are not shown, and nothing has been sent.": (
        "Die Nachweise betreffen eine andere Person; sie werden nicht angezeigt, und es wurde nichts gesendet."
    ),
    "If you are the applicant": "Wenn Sie die antragstellende Person sind",
    "Log out, then log in again with your own eID.": "Melden Sie sich ab und mit Ihrer eigenen eID wieder an.",
    "Log out and log in again": "Abmelden und neu anmelden",
    "If you are not the applicant": "Wenn Sie nicht die antragstellende Person sind",
    "Go back to the procedure portal: nothing is sent, and the portal is told that the person who logged in "
    "here was not the applicant.": (
        "Kehren Sie zum Verfahrensportal zurück: Es wird nichts gesendet, und das Portal erfährt, dass die hier "
        "angemeldete Person nicht die antragstellende Person war."
    ),
    "Your decision was recorded": "Ihre Entscheidung wurde gespeichert",
    "The documents you accepted are sent to the procedure portal.": (
        "Die angenommenen Nachweise werden an das Verfahrensportal gesendet."
    ),
    "You refused every document: none is sent.": "Sie haben alle Nachweise abgelehnt: keiner wird gesendet.",
    "Return to the procedure portal": "Zurück zum Verfahrensportal",
    "Nothing is sent.": "Es wird nichts gesendet.",
    "You can close this page and go back to the procedure portal.": (
        "Sie können diese Seite schließen und zum Verfahrensportal zurückkehren."
    ),
    "The form expired; please try again.": "Das Formular ist abgelaufen; bitte versuchen Sie es erneut.",
    "The form was not acceptable.": "Das Formular war nicht annehmbar.",
    "Logged in as": "Angemeldet als",
}

_CATALOGUES: Final = {"fr": _FR, "de": _DE}


def translate(lang: str, text: str) -> str:
    """``text`` (English) in ``lang``; English when there is no translation."""
    return _CATALOGUES.get(lang, {}).get(text, text)


def negotiate(asked: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The page language: ``?lang=``, then the cookie, then the best of ``Accept-Language``, else English."""
    for choice in (asked, cookie):
        if choice in LANGUAGES:
            return choice
    ranked: list[tuple[float, int, str]] = []
    for n, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        code = tag.strip().lower().split("-")[0]
        if code in LANGUAGES and quality > 0:
            ranked.append((-quality, n, code))
    return min(ranked)[2] if ranked else "en"
