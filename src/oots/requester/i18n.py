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
    "File": "Fichier",
    "Issued by": "Délivré par",
    "Not stated": "Non indiqué",
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
    "Skip to content": "Aller au contenu",
    "Choose a procedure and a country.": "Choisissez une démarche et un pays.",
    "The application has moved on since this page was shown; open it again to see where it stands.": (
        "La demande a avancé depuis l'affichage de cette page ; ouvrez-la à nouveau pour voir où elle en est."
    ),
    "Requesting a birth certificate": "Demander un acte de naissance",
    "Requesting proof of residence": "Demander un justificatif de domicile",
    "Applying for a study grant": "Demander une bourse d'études",
    "Registering a motor vehicle": "Immatriculer un véhicule",
    # the reasons an application ended (oots.requester.states.REASON_TEXT)
    "The procedure is not known to the Evidence Broker.": "L'Evidence Broker ne connaît pas cette démarche.",
    "No evidence can be retrieved through OOTS for this requirement in that country; "
    "please upload the document yourself.": (
        "Aucune preuve ne peut être obtenue par OOTS pour cette exigence dans ce pays ; "
        "veuillez téléverser le document vous-même."
    ),
    "No authority of that country offers this evidence through OOTS; please upload it yourself.": (
        "Aucune autorité de ce pays ne fournit cette preuve par OOTS ; veuillez la téléverser vous-même."
    ),
    "The European directories could not be reached; please try again later.": (
        "Les annuaires européens n'ont pas pu être joints ; veuillez réessayer plus tard."
    ),
    "The authority holding the evidence could not be reached; please try again later.": (
        "L'autorité qui détient la preuve n'a pas pu être jointe ; veuillez réessayer plus tard."
    ),
    "The authority found no record for you; check your details or upload the document.": (
        "L'autorité n'a trouvé aucun dossier à votre nom ; vérifiez vos données ou téléversez le document."
    ),
    "The authority cannot provide this evidence; please upload it yourself.": (
        "L'autorité ne peut pas fournir cette preuve ; veuillez la téléverser vous-même."
    ),
    "The authority needs a login with a higher level of assurance; log in again with a stronger eID means.": (
        "L'autorité exige une connexion d'un niveau de garantie plus élevé ; "
        "reconnectez-vous avec un moyen eID plus fort."
    ),
    "You chose not to share the evidence after previewing it.": (
        "Vous avez choisi de ne pas partager la preuve après l'avoir prévisualisée."
    ),
    "The person who logged in at the preview was not the applicant, so the authority sent nothing; "
    "start again and log in at the preview with your own eID.": (
        "La personne connectée à la prévisualisation n'était pas le demandeur, l'autorité n'a donc rien envoyé ; "
        "recommencez et connectez-vous à la prévisualisation avec votre propre eID."
    ),
    "The authority refused the request.": "L'autorité a refusé la demande.",
    "The authority answered with an error; please try again later or upload the document.": (
        "L'autorité a répondu par une erreur ; veuillez réessayer plus tard ou téléverser le document."
    ),
    "An answer to a follow-up question was not accepted; please check it.": (
        "Une réponse à une question complémentaire n'a pas été acceptée ; veuillez la vérifier."
    ),
    "The request was cancelled.": "La demande a été annulée.",
    "The evidence did not arrive in time; you can start again.": (
        "La preuve n'est pas arrivée à temps ; vous pouvez recommencer."
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
    "File": "Datei",
    "Issued by": "Ausgestellt von",
    "Not stated": "Nicht angegeben",
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
    "Skip to content": "Zum Inhalt springen",
    "Choose a procedure and a country.": "Wählen Sie ein Verfahren und ein Land.",
    "The application has moved on since this page was shown; open it again to see where it stands.": (
        "Der Antrag ist weitergegangen, seit diese Seite angezeigt wurde; öffnen Sie ihn erneut, um den Stand zu sehen."
    ),
    "Requesting a birth certificate": "Geburtsurkunde beantragen",
    "Requesting proof of residence": "Meldebescheinigung beantragen",
    "Applying for a study grant": "Studienbeihilfe beantragen",
    "Registering a motor vehicle": "Kraftfahrzeug zulassen",
    # the reasons an application ended (oots.requester.states.REASON_TEXT)
    "The procedure is not known to the Evidence Broker.": "Der Evidence Broker kennt dieses Verfahren nicht.",
    "No evidence can be retrieved through OOTS for this requirement in that country; "
    "please upload the document yourself.": (
        "Für diese Anforderung kann in diesem Land kein Nachweis über OOTS abgerufen werden; "
        "bitte laden Sie den Nachweis selbst hoch."
    ),
    "No authority of that country offers this evidence through OOTS; please upload it yourself.": (
        "Keine Behörde dieses Landes bietet diesen Nachweis über OOTS an; bitte laden Sie ihn selbst hoch."
    ),
    "The European directories could not be reached; please try again later.": (
        "Die europäischen Verzeichnisse waren nicht erreichbar; bitte versuchen Sie es später erneut."
    ),
    "The authority holding the evidence could not be reached; please try again later.": (
        "Die Behörde, die den Nachweis führt, war nicht erreichbar; bitte versuchen Sie es später erneut."
    ),
    "The authority found no record for you; check your details or upload the document.": (
        "Die Behörde hat keinen Eintrag zu Ihnen gefunden; prüfen Sie Ihre Angaben oder laden Sie den Nachweis hoch."
    ),
    "The authority cannot provide this evidence; please upload it yourself.": (
        "Die Behörde kann diesen Nachweis nicht liefern; bitte laden Sie ihn selbst hoch."
    ),
    "The authority needs a login with a higher level of assurance; log in again with a stronger eID means.": (
        "Die Behörde verlangt eine Anmeldung mit höherem Vertrauensniveau; "
        "melden Sie sich mit einem stärkeren eID-Mittel erneut an."
    ),
    "You chose not to share the evidence after previewing it.": (
        "Sie haben sich nach der Vorschau entschieden, den Nachweis nicht zu teilen."
    ),
    "The person who logged in at the preview was not the applicant, so the authority sent nothing; "
    "start again and log in at the preview with your own eID.": (
        "Bei der Vorschau hat sich nicht die antragstellende Person angemeldet, daher hat die Behörde nichts "
        "gesendet; beginnen Sie neu und melden Sie sich bei der Vorschau mit Ihrer eigenen eID an."
    ),
    "The authority refused the request.": "Die Behörde hat die Anfrage abgelehnt.",
    "The authority answered with an error; please try again later or upload the document.": (
        "Die Behörde hat mit einem Fehler geantwortet; bitte versuchen Sie es später erneut "
        "oder laden Sie den Nachweis hoch."
    ),
    "An answer to a follow-up question was not accepted; please check it.": (
        "Eine Antwort auf eine Rückfrage wurde nicht angenommen; bitte prüfen Sie sie."
    ),
    "The request was cancelled.": "Die Anfrage wurde abgebrochen.",
    "The evidence did not arrive in time; you can start again.": (
        "Der Nachweis ist nicht rechtzeitig eingetroffen; Sie können neu beginnen."
    ),
}

_CATALOGUES: Final = {"fr": _FR, "de": _DE}


def translate(lang: str, text: str) -> str:
    """``text`` (English) in ``lang``; English when there is no translation."""
    return _CATALOGUES.get(lang, {}).get(text, text)
