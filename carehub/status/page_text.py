"""The status page's words in English and French; notices in both when the request (so its language) is unknown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Your request {reference}",
        "other_language": "Français",
        "other_language_code": "fr",
        "status": "Where it is",
        "merged": "Your request {own} is now part of {reference}.",
        "conversation": "Your conversation",
        "you": "You",
        "us": "{city_name}",
        "agent": "{name}, {city_name}",
        "nothing_yet": "No messages yet.",
        "add": "Add a message",
        "add_hint": "It goes to the team handling your request. Up to 2,000 characters. For emergencies, call 911.",
        "add_new": "This request is closed. A message you send here starts a new request, linked to this one.",
        "none": "To tell us more, please contact us: call {phone}, or visit {website}.",
        "label": "Your message",
        "send": "Send my message",
        "sent": "Thank you. We have your message and it is now part of your request.",
        "sent_new": "Thank you. Your message started a new request, {reference}.",
        "error_prefix": "Error: ",
        "empty": "Write your message before sending it.",
        "too_long": "Your message has {count} characters; please shorten it to 2,000 or fewer.",
        "private": "This page is for you alone: anyone with its link can read it. Please do not share the link.",
        "at": "Sent {when}",
    },
    "fr": {
        "title": "Votre demande {reference}",
        "other_language": "English",
        "other_language_code": "en",
        "status": "Où en est votre demande",
        "merged": "Votre demande {own} fait maintenant partie de la demande {reference}.",
        "conversation": "Vos échanges avec nous",
        "you": "Vous",
        "us": "{city_name}",
        "agent": "{name}, {city_name}",
        "nothing_yet": "Aucun message pour l'instant.",
        "add": "Ajouter un message",
        "add_hint": "Il sera transmis à l'équipe qui traite votre demande. Jusqu'à 2 000 caractères. En cas "
        "d'urgence, composez le 911.",
        "add_new": "Cette demande est fermée. Un message envoyé ici ouvrira une nouvelle demande, liée à celle-ci.",
        "none": "Pour nous en dire plus, communiquez avec nous : composez le {phone} ou visitez {website}.",
        "label": "Votre message",
        "send": "Envoyer mon message",
        "sent": "Merci. Nous avons reçu votre message; il fait maintenant partie de votre demande.",
        "sent_new": "Merci. Votre message a ouvert une nouvelle demande, {reference}.",
        "error_prefix": "Erreur : ",
        "empty": "Écrivez votre message avant de l'envoyer.",
        "too_long": "Votre message compte {count} caractères; veuillez le réduire à 2 000 ou moins.",
        "private": "Cette page est pour vous seulement : toute personne qui a son lien peut la lire. Veuillez ne "
        "pas partager le lien.",
        "at": "Envoyé le {when}",
    },
}

Notice = Literal["unavailable", "cross_site", "limited"]

_NOTICES: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "unavailable": (
            "This link does not work",
            "This status link has expired, was cancelled, or is not complete. To ask about your request, text "
            "STATUS to our number, write to {email}, call {phone}, or visit {website}.",
        ),
        "cross_site": (
            "Message not accepted",
            "This message came from another website, so it was not sent. Please open the link from our message "
            "and write on that page.",
        ),
        "limited": (
            "Please wait a moment",
            "Too many requests came from your connection. Please try again in a minute.",
        ),
    },
    "fr": {
        "unavailable": (
            "Ce lien ne fonctionne pas",
            "Ce lien de suivi est expiré, a été annulé ou est incomplet. Pour vous renseigner sur votre demande, "
            "envoyez STATUT par texto à notre numéro, écrivez à {email}, composez le {phone} ou visitez {website}.",
        ),
        "cross_site": (
            "Message non accepté",
            "Ce message provenait d'un autre site Web; il n'a donc pas été envoyé. Veuillez ouvrir le lien de notre "
            "message et écrire sur cette page.",
        ),
        "limited": (
            "Veuillez patienter",
            "Trop de demandes proviennent de votre connexion. Veuillez réessayer dans une minute.",
        ),
    },
}


@dataclass(frozen=True)
class NoticePart:
    lang: str
    title: str
    text: str


def notice_texts(notice: Notice, lang: str | None, **city: str) -> list[NoticePart]:
    """The notice in `lang`, or in English then French when the language is not known."""
    languages = [lang] if lang in _NOTICES else ["en", "fr"]
    parts = []
    for language in languages:
        title, text = _NOTICES[language][notice]
        parts.append(NoticePart(language, title, text.format(**city)))
    return parts
