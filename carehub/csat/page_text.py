"""The survey page's words in English and French (the resident's language; both when it is not known)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "How did we do?",
        "legend": "How did we do with {reference}?",
        "ratings": "1: Poor|2: Fair|3: Good|4: Very good|5: Excellent",
        "comment": "Anything else you would like to tell us? (optional)",
        "comment_hint": "Up to 1,000 characters. Please leave out personal details such as your address.",
        "submit": "Send my answer",
        "error_prefix": "Error: ",
        "rating_required": "Choose a rating from 1 (poor) to 5 (excellent).",
        "comment_too_long": "Your comment has {count} characters; please shorten it to 1,000 or fewer.",
        "thanks_title": "Thank you",
        "thanks": "Thank you for your answer. It helps us improve our service.",
        "your_rating": "Your rating: {rating} out of 5.",
        "change": "Change my answer",
        "change_note": "You can change your answer with the same link for 14 days.",
    },
    "fr": {
        "title": "Comment avons-nous fait?",
        "legend": "Comment avons-nous traité votre demande {reference}?",
        "ratings": "1 : Mauvais|2 : Passable|3 : Bien|4 : Très bien|5 : Excellent",
        "comment": "Souhaitez-vous ajouter quelque chose? (facultatif)",
        "comment_hint": "Jusqu'à 1 000 caractères. Veuillez ne pas inclure de renseignements personnels, comme votre "
        "adresse.",
        "submit": "Envoyer ma réponse",
        "error_prefix": "Erreur : ",
        "rating_required": "Choisissez une note de 1 (mauvais) à 5 (excellent).",
        "comment_too_long": "Votre commentaire compte {count} caractères; veuillez le réduire à 1 000 ou moins.",
        "thanks_title": "Merci",
        "thanks": "Merci de votre réponse. Elle nous aide à améliorer notre service.",
        "your_rating": "Votre note : {rating} sur 5.",
        "change": "Modifier ma réponse",
        "change_note": "Vous pouvez modifier votre réponse avec le même lien pendant 14 jours.",
    },
}

BilingualNotice = Literal["not_found", "closed", "cross_site", "limited"]

_NOTICES: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "not_found": (
            "Survey not found",
            "We could not find this survey. Please check that the link is complete, as it was in our message.",
        ),
        "closed": (
            "This survey has closed",
            "Thank you for wanting to answer. This survey was open for 14 days and has now closed.",
        ),
        "cross_site": (
            "Answer not accepted",
            "This answer came from another website, so it was not recorded. Please open the link from our "
            "message and answer on this page.",
        ),
        "limited": (
            "Please wait a moment",
            "Too many requests came from your connection. Please try again in a minute.",
        ),
    },
    "fr": {
        "not_found": (
            "Sondage introuvable",
            "Nous n'avons pas trouvé ce sondage. Veuillez vérifier que le lien est complet, tel qu'il figurait dans "
            "notre message.",
        ),
        "closed": (
            "Ce sondage est terminé",
            "Merci de vouloir répondre. Ce sondage était ouvert pendant 14 jours et il est maintenant terminé.",
        ),
        "cross_site": (
            "Réponse non acceptée",
            "Cette réponse provenait d'un autre site Web; elle n'a donc pas été enregistrée. Veuillez ouvrir le "
            "lien de notre message et répondre sur cette page.",
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


def notice_texts(notice: BilingualNotice, lang: str | None) -> list[NoticePart]:
    """The notice in `lang`, or in English then French when the language is not known."""
    languages = [lang] if lang in _NOTICES else ["en", "fr"]
    return [NoticePart(language, *_NOTICES[language][notice]) for language in languages]
