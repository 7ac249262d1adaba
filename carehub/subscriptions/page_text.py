"""The alert subscription pages' words in English and French, and the consent wording (recorded exactly as shown)."""

from __future__ import annotations

from carehub.settings import Settings

LANGUAGES = ("en", "fr")

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "other_language": "Français",
        "other_language_code": "fr",
        "subscribe_title": "Get city alerts",
        "subscribe_intro": "Get a text message or an email when something affects city services: snow clearing, "
        "water, garbage and recycling, road closures and emergencies. It is free.",
        "topics_legend": "Which alerts do you want?",
        "topics_hint": "Choose one or more.",
        "postal_label": "Postal code (optional)",
        "postal_hint": "For alerts about your part of the city, for example L1V 6K7. Leave it empty to get "
        "alerts for the whole city.",
        "street_label": "Street address (optional)",
        "street_hint": "For alerts about your part of the city, e.g. 1 The Esplanade.",
        "contact_legend": "How should we reach you?",
        "contact_hint": "Give a mobile number, an email address, or both.",
        "phone_label": "Mobile number, for text messages",
        "phone_hint": "For example 905-555-0123. Your carrier's message rates may apply.",
        "email_label": "Email address",
        "language_legend": "Language of the alerts",
        "consent_legend": "Your consent",
        "consent": "I agree to receive alerts from the {city_name} about the topics I chose. "
        "I can unsubscribe at any time.",
        "sender": "Sent by: {city_name}, {address}. Phone: {phone}. Website: {website}",
        "submit": "Subscribe",
        "error_prefix": "Error: ",
        "error_summary": "There is a problem",
        "topic_required": "Choose at least one kind of alert.",
        "consent_required": "Tick the box to agree to receive alerts.",
        "contact_required": "Give a mobile number or an email address.",
        "phone_invalid": "Enter a Canadian or US mobile number, such as 905-555-0123.",
        "email_invalid": "Enter an email address in the form name@example.com.",
        "postal_invalid": "Enter a Canadian postal code, such as L1V 6K7, or leave it empty.",
        "area_none": "Your postal code is not in one of our alert areas, so your alerts will be for the whole city.",
        "area_found": "Your alerts will be for {area} and for the whole city.",
        "address_none": "We could not place your address in one of our alert areas, so your alerts will be for the "
        "whole city.",
        "code_title": "Enter the code we texted you",
        "code_intro": "We sent a 6-digit code to {phone}. Type it here to start getting alerts by text. It works "
        "for {minutes} minutes.",
        "code_label": "6-digit code",
        "code_submit": "Confirm",
        "code_wrong": "That code is not right, or it has expired. Check the text message and try again.",
        "code_required": "Enter the 6-digit code from the text message.",
        "start_again": "Start again",
        "start_again_hint": "No text message? Check the number and start again.",
        "email_sent_title": "Check your email",
        "email_sent": "We sent an email to {email}. Open the link in it to confirm your alerts by email. The link "
        "works for {minutes} minutes.",
        "confirm_title": "Confirm your subscription",
        "confirm_intro": "Press the button to start getting alerts by email at {email}.",
        "confirm_button": "Confirm my subscription",
        "confirm_failed_title": "This link no longer works",
        "confirm_failed": "This confirmation link has expired or was already used. You can subscribe again.",
        "subscribed_title": "You're subscribed",
        "subscribed_intro": "You will get alerts at {address} about:",
        "how_to_stop_sms": "To stop every text alert, reply STOP to any of them.",
        "how_to_stop_email": "Every alert email has a link to unsubscribe.",
        "unsubscribe_from": "Unsubscribe from {topic}",
        "unsubscribe_title": "Unsubscribe",
        "unsubscribe_intro": "You will stop getting {topic} alerts {channel}.",
        "unsubscribe_button": "Unsubscribe from {topic}",
        "unsubscribed_title": "You're unsubscribed",
        "unsubscribed": "You will no longer get {topic} alerts {channel}.",
        "already_unsubscribed": "You are not subscribed to {topic} alerts {channel}.",
        "by_sms": "by text message",
        "by_email": "by email",
        "subscribe_again": "Subscribe to city alerts",
        "not_found_title": "Page not found",
        "not_found": "We could not find this page. Please check that the link is complete, as it was in our message.",
        "limited_title": "Please wait a moment",
        "limited": "Too many requests came from your connection or for this address. Please try again in a minute.",
        "cross_site_title": "Not accepted",
        "cross_site": "This came from another website, so nothing was changed. Please use the form on this page.",
        "email_subject": "Confirm your alerts from the {city_name}",
    },
    "fr": {
        "other_language": "English",
        "other_language_code": "en",
        "subscribe_title": "Recevoir les alertes de la Ville",
        "subscribe_intro": "Recevez un texto ou un courriel quand un événement touche les services municipaux : "
        "déneigement, eau, ordures et recyclage, fermetures de routes et urgences. C'est gratuit.",
        "topics_legend": "Quelles alertes voulez-vous recevoir?",
        "topics_hint": "Choisissez-en une ou plusieurs.",
        "postal_label": "Code postal (facultatif)",
        "postal_hint": "Pour les alertes touchant votre secteur, par exemple L1V 6K7. Laissez vide pour recevoir "
        "les alertes de toute la ville.",
        "street_label": "Adresse municipale (facultatif)",
        "street_hint": "Pour les alertes touchant votre secteur, par exemple 1 The Esplanade.",
        "contact_legend": "Comment vous joindre?",
        "contact_hint": "Indiquez un numéro de cellulaire, une adresse courriel, ou les deux.",
        "phone_label": "Numéro de cellulaire, pour les textos",
        "phone_hint": "Par exemple 905-555-0123. Les frais de messagerie de votre fournisseur peuvent s'appliquer.",
        "email_label": "Adresse courriel",
        "language_legend": "Langue des alertes",
        "consent_legend": "Votre consentement",
        "consent": "J'accepte de recevoir des alertes de {city_name} sur les sujets que j'ai choisis. "
        "Je peux me désabonner en tout temps.",
        "sender": "Expéditeur : {city_name}, {address}. Téléphone : {phone}. Site Web : {website}",
        "submit": "M'abonner",
        "error_prefix": "Erreur : ",
        "error_summary": "Il y a un problème",
        "topic_required": "Choisissez au moins un type d'alerte.",
        "consent_required": "Cochez la case pour accepter de recevoir des alertes.",
        "contact_required": "Indiquez un numéro de cellulaire ou une adresse courriel.",
        "phone_invalid": "Entrez un numéro de cellulaire canadien ou américain, comme 905-555-0123.",
        "email_invalid": "Entrez une adresse courriel de la forme nom@exemple.ca.",
        "postal_invalid": "Entrez un code postal canadien, comme L1V 6K7, ou laissez le champ vide.",
        "area_none": "Votre code postal ne fait partie d'aucun de nos secteurs d'alerte; vos alertes porteront donc "
        "sur toute la ville.",
        "area_found": "Vos alertes porteront sur le secteur {area} et sur toute la ville.",
        "address_none": "Nous n'avons pas pu situer votre adresse dans l'un de nos secteurs d'alerte; vos alertes "
        "porteront donc sur toute la ville.",
        "code_title": "Entrez le code reçu par texto",
        "code_intro": "Nous avons envoyé un code à 6 chiffres au {phone}. Entrez-le ici pour recevoir les alertes "
        "par texto. Il est valide pendant {minutes} minutes.",
        "code_label": "Code à 6 chiffres",
        "code_submit": "Confirmer",
        "code_wrong": "Ce code n'est pas le bon, ou il a expiré. Vérifiez le texto et réessayez.",
        "code_required": "Entrez le code à 6 chiffres reçu par texto.",
        "start_again": "Recommencer",
        "start_again_hint": "Pas de texto? Vérifiez le numéro et recommencez.",
        "email_sent_title": "Consultez vos courriels",
        "email_sent": "Nous avons envoyé un courriel à {email}. Ouvrez le lien qu'il contient pour confirmer vos "
        "alertes par courriel. Le lien est valide pendant {minutes} minutes.",
        "confirm_title": "Confirmez votre abonnement",
        "confirm_intro": "Appuyez sur le bouton pour recevoir les alertes par courriel à {email}.",
        "confirm_button": "Confirmer mon abonnement",
        "confirm_failed_title": "Ce lien ne fonctionne plus",
        "confirm_failed": "Ce lien de confirmation a expiré ou a déjà servi. Vous pouvez vous abonner de nouveau.",
        "subscribed_title": "Vous êtes abonné",
        "subscribed_intro": "Vous recevrez à {address} les alertes sur :",
        "how_to_stop_sms": "Pour arrêter tous les textos d'alerte, répondez STOP à l'un d'eux.",
        "how_to_stop_email": "Chaque courriel d'alerte contient un lien pour vous désabonner.",
        "unsubscribe_from": "Me désabonner : {topic}",
        "unsubscribe_title": "Désabonnement",
        "unsubscribe_intro": "Vous ne recevrez plus les alertes « {topic} » {channel}.",
        "unsubscribe_button": "Me désabonner : {topic}",
        "unsubscribed_title": "Vous êtes désabonné",
        "unsubscribed": "Vous ne recevrez plus les alertes « {topic} » {channel}.",
        "already_unsubscribed": "Vous n'êtes pas abonné aux alertes « {topic} » {channel}.",
        "by_sms": "par texto",
        "by_email": "par courriel",
        "subscribe_again": "M'abonner aux alertes de la Ville",
        "not_found_title": "Page introuvable",
        "not_found": "Nous n'avons pas trouvé cette page. Veuillez vérifier que le lien est complet, tel qu'il "
        "figurait dans notre message.",
        "limited_title": "Veuillez patienter",
        "limited": "Trop de demandes proviennent de votre connexion ou visent cette adresse. Veuillez réessayer "
        "dans une minute.",
        "cross_site_title": "Non accepté",
        "cross_site": "Cette demande provenait d'un autre site Web; rien n'a été changé. Veuillez utiliser le "
        "formulaire de cette page.",
        "email_subject": "Confirmez vos alertes de {city_name}",
    },
}

LANGUAGE_NAMES = {"en": "English", "fr": "Français"}


def language(value: object) -> str:
    """A supported language code; English for anything else."""
    return value if isinstance(value, str) and value in LANGUAGES else "en"


def consent_wording(settings: Settings, lang: str) -> str:
    """The consent exactly as the form shows it: the agreement, then who sends the alerts (CASL)."""
    t = TEXT[language(lang)]
    return f"{t['consent'].format(city_name=settings.city_name)} {sender_identity(settings, lang)}"


def sender_identity(settings: Settings, lang: str) -> str:
    return TEXT[language(lang)]["sender"].format(
        city_name=settings.city_name,
        address=settings.city_postal_address,
        phone=settings.city_phone,
        website=settings.city_website,
    )
