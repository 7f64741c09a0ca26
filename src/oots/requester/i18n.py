"""The demo portal's words in English, French and German (``translate(lang, text)``).

The English sentence is the key; a missing translation falls back to English.
"""

from __future__ import annotations

from typing import Final

__all__ = ["LANGUAGES", "translate"]

LANGUAGES: Final = {"en": "English", "fr": "Français", "de": "Deutsch"}

_FR: Final[dict[str, str]] = {
    "Apply online": "Faire une demande en ligne",
    "Log in with eID": "Se connecter avec l'eID",
    "Log in with your national eID to apply.": "Connectez-vous avec votre eID national pour faire une demande.",
    "Procedure": "Démarche",
    "Country that holds your documents": "Pays qui détient vos documents",
    "Start": "Commencer",
    "Your application": "Votre demande",
    "We are finding out which documents the procedure needs.": "Nous cherchons quels documents la démarche demande.",
    "This page updates by itself when there is news.": "Cette page se met à jour d'elle-même dès qu'il y a du nouveau.",
    "Check again": "Vérifier à nouveau",
    "There is news: the page is loading it.": "Il y a du nouveau : la page le charge.",
    "What the procedure needs": "Ce que la démarche demande",
    "Retrieve it through OOTS": "Le faire venir par OOTS",
    "Upload it myself": "Le téléverser moi-même",
    "Which document": "Quel document",
    "Who should provide it": "Qui doit le fournir",
    "Continue": "Continuer",
    "Your answer was not accepted; please check it.": "Votre réponse n'a pas été acceptée ; vérifiez-la.",
    "Ask for the evidence": "Demander la preuve",
    "We will ask": "Nous allons demander à",
    "for": "le document",
    "because the procedure needs": "parce que la démarche demande",
    "Your name, date of birth and identifier from your eID login are sent with the request.": (
        "Vos nom, date de naissance et identifiant issus de votre connexion eID sont envoyés avec la demande."
    ),
    "Request the evidence": "Demander la preuve",
    "We are waiting for the authority's answer.": "Nous attendons la réponse de l'autorité.",
    "Send the documents without showing them to me first (no preview)": (
        "Envoyer les documents sans me les montrer d'abord (sans aperçu)"
    ),
    "Preview the evidence": "Prévisualiser la preuve",
    "The authority asks you to look at the evidence before it is sent.": (
        "L'autorité vous demande de regarder la preuve avant qu'elle ne soit envoyée."
    ),
    "Go to the preview": "Aller à la prévisualisation",
    "Evidence attached to your application": "Preuves jointes à votre demande",
    "Open": "Ouvrir",
    "The documents could not be retrieved": "Les documents n'ont pas pu être obtenus",
    "What you can do": "Ce que vous pouvez faire",
    "Start again": "Recommencer",
    "or upload the document yourself.": "ou téléversez le document vous-même.",
    "You will upload this document yourself.": "Vous téléverserez ce document vous-même.",
    "Language": "Langue",
    "Error": "Erreur",
    "Not found": "Introuvable",
    "The form expired; please try again.": "Le formulaire a expiré ; veuillez réessayer.",
    "Please answer every question.": "Veuillez répondre à chaque question.",
    "Document": "Document",
    "Format": "Format",
    "File": "Fichier",
    "You will upload the documents yourself": "Vous téléverserez les documents vous-même",
    "You chose to upload every document yourself, so nothing is asked for through OOTS.": (
        "Vous avez choisi de téléverser vous-même chaque document : rien n'est demandé par OOTS."
    ),
    "Back to the start page": "Retour à la page d'accueil",
    "Please answer": "Veuillez répondre à",
    "Type": "Saisissez",
    "a region code (NUTS level {n}): {country} followed by one letter or digit": (
        "un code de région (NUTS niveau {n}) : {country} suivi d'une lettre ou d'un chiffre"
    ),
    "a region code (NUTS level {n}): {country} followed by {n} letters or digits": (
        "un code de région (NUTS niveau {n}) : {country} suivi de {n} lettres ou chiffres"
    ),
    ", for example {code} for {place}": ", par exemple {code} pour {place}",
    "a local administrative unit code (LAU), as the country's statistics office lists it": (
        "un code d'unité administrative locale (LAU), tel que l'office statistique du pays le publie"
    ),
    "a region code ({level}), starting with the country code {country}": (
        "un code de région ({level}), commençant par le code de pays {country}"
    ),
}

_DE: Final[dict[str, str]] = {
    "Apply online": "Online beantragen",
    "Log in with eID": "Mit eID anmelden",
    "Log in with your national eID to apply.": "Melden Sie sich mit Ihrer nationalen eID an, um zu beantragen.",
    "Procedure": "Verfahren",
    "Country that holds your documents": "Land, in dem Ihre Nachweise vorliegen",
    "Start": "Beginnen",
    "Your application": "Ihr Antrag",
    "We are finding out which documents the procedure needs.": "Wir ermitteln, welche Nachweise das Verfahren braucht.",
    "This page updates by itself when there is news.": "Diese Seite aktualisiert sich selbst, sobald es Neues gibt.",
    "Check again": "Erneut prüfen",
    "There is news: the page is loading it.": "Es gibt Neues: Die Seite lädt es.",
    "What the procedure needs": "Was das Verfahren braucht",
    "Retrieve it through OOTS": "Über OOTS abrufen",
    "Upload it myself": "Selbst hochladen",
    "Which document": "Welcher Nachweis",
    "Who should provide it": "Wer soll ihn liefern",
    "Continue": "Weiter",
    "Your answer was not accepted; please check it.": "Ihre Antwort wurde nicht angenommen; bitte prüfen Sie sie.",
    "Ask for the evidence": "Nachweis anfordern",
    "We will ask": "Wir fragen",
    "for": "nach",
    "because the procedure needs": "weil das Verfahren Folgendes braucht:",
    "Your name, date of birth and identifier from your eID login are sent with the request.": (
        "Ihr Name, Geburtsdatum und Ihre Kennung aus der eID-Anmeldung werden mit der Anfrage gesendet."
    ),
    "Request the evidence": "Nachweis anfordern",
    "We are waiting for the authority's answer.": "Wir warten auf die Antwort der Behörde.",
    "Send the documents without showing them to me first (no preview)": (
        "Die Dokumente senden, ohne sie mir vorher zu zeigen (keine Vorschau)"
    ),
    "Preview the evidence": "Nachweis ansehen",
    "The authority asks you to look at the evidence before it is sent.": (
        "Die Behörde bittet Sie, den Nachweis vor dem Versand anzusehen."
    ),
    "Go to the preview": "Zur Vorschau",
    "Evidence attached to your application": "Nachweise zu Ihrem Antrag",
    "Open": "Öffnen",
    "The documents could not be retrieved": "Die Nachweise konnten nicht abgerufen werden",
    "What you can do": "Was Sie tun können",
    "Start again": "Neu beginnen",
    "or upload the document yourself.": "oder laden Sie den Nachweis selbst hoch.",
    "You will upload this document yourself.": "Sie laden diesen Nachweis selbst hoch.",
    "Language": "Sprache",
    "Error": "Fehler",
    "Not found": "Nicht gefunden",
    "The form expired; please try again.": "Das Formular ist abgelaufen; bitte versuchen Sie es erneut.",
    "Please answer every question.": "Bitte beantworten Sie jede Frage.",
    "Document": "Nachweis",
    "Format": "Format",
    "File": "Datei",
    "You will upload the documents yourself": "Sie laden die Nachweise selbst hoch",
    "You chose to upload every document yourself, so nothing is asked for through OOTS.": (
        "Sie haben gewählt, jeden Nachweis selbst hochzuladen; über OOTS wird nichts angefragt."
    ),
    "Back to the start page": "Zurück zur Startseite",
    "Please answer": "Bitte beantworten Sie",
    "Type": "Geben Sie ein:",
    "a region code (NUTS level {n}): {country} followed by one letter or digit": (
        "einen Regionscode (NUTS-Ebene {n}): {country} und ein Buchstabe oder eine Ziffer"
    ),
    "a region code (NUTS level {n}): {country} followed by {n} letters or digits": (
        "einen Regionscode (NUTS-Ebene {n}): {country} und {n} Buchstaben oder Ziffern"
    ),
    ", for example {code} for {place}": ", zum Beispiel {code} für {place}",
    "a local administrative unit code (LAU), as the country's statistics office lists it": (
        "einen Code einer lokalen Verwaltungseinheit (LAU), wie ihn das Statistikamt des Landes führt"
    ),
    "a region code ({level}), starting with the country code {country}": (
        "einen Regionscode ({level}), der mit dem Ländercode {country} beginnt"
    ),
}

_CATALOGUES: Final = {"fr": _FR, "de": _DE}


def translate(lang: str, text: str) -> str:
    """``text`` (English) in ``lang``; English when there is no translation."""
    return _CATALOGUES.get(lang, {}).get(text, text)
