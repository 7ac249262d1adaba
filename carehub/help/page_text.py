"""The help pages' words in English and French, and the names of the topics."""

from __future__ import annotations

LANGUAGES = ("en", "fr")

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "other_language": "Français",
        "other_language_code": "fr",
        "skip": "Skip to main content",
        "help_centre": "Help centre",
        "intro": "Quick answers about city services. Ask in your own words.",
        "search_label": "Search for an answer",
        "search_hint": "For example: garbage wasn't picked up",
        "search_button": "Search",
        "topics": "Browse by topic",
        "popular": "Popular answers",
        "results_title": "Answers for “{q}”",
        "results_count": "{n} answers found.",
        "no_results_title": "No answer found",
        "no_results": "We could not find an answer to that. Try other words, or contact us:",
        "weak_results": "These may not answer your question. If not, contact us:",
        "topic_title": "{topic}",
        "last_reviewed": "Last reviewed: {date}",
        "related": "Related services",
        "in_other_language": "Lire en français",
        "feedback_legend": "Did this answer your question?",
        "yes": "Yes",
        "no": "No",
        "thanks_title": "Thank you",
        "thanks_yes": "Thank you for telling us. It helps us improve these answers.",
        "thanks_no": "Thank you for telling us. A person can help you:",
        "contact_title": "Talk to a person",
        "contact_chat": "Chat with us on {website}",
        "contact_text": "Text {number}",
        "contact_email": "Email {email}",
        "contact_phone": "Call {phone}",
        "back": "Back to the help centre",
        "not_found_title": "Page not found",
        "not_found": "There is no answer at this address. It may have been moved or removed.",
        "limited_title": "Too many requests",
        "limited": "Please wait a minute and try again.",
        "cross_site_title": "Not sent",
        "cross_site": "This form can only be sent from the city's own help pages.",
    },
    "fr": {
        "other_language": "English",
        "other_language_code": "en",
        "skip": "Passer au contenu principal",
        "help_centre": "Centre d'aide",
        "intro": "Des réponses rapides sur les services municipaux. Posez votre question dans vos mots.",
        "search_label": "Chercher une réponse",
        "search_hint": "Par exemple : mes poubelles n'ont pas été ramassées",
        "search_button": "Chercher",
        "topics": "Parcourir par sujet",
        "popular": "Réponses populaires",
        "results_title": "Réponses pour « {q} »",
        "results_count": "{n} réponses trouvées.",
        "no_results_title": "Aucune réponse trouvée",
        "no_results": "Nous n'avons pas trouvé de réponse. Essayez d'autres mots, ou contactez-nous :",
        "weak_results": "Ces réponses ne correspondent peut-être pas. Sinon, contactez-nous :",
        "topic_title": "{topic}",
        "last_reviewed": "Dernière révision : {date}",
        "related": "Services connexes",
        "in_other_language": "Read in English",
        "feedback_legend": "Cette page a-t-elle répondu à votre question?",
        "yes": "Oui",
        "no": "Non",
        "thanks_title": "Merci",
        "thanks_yes": "Merci de nous l'avoir dit. Cela nous aide à améliorer ces réponses.",
        "thanks_no": "Merci de nous l'avoir dit. Une personne peut vous aider :",
        "contact_title": "Parler à une personne",
        "contact_chat": "Clavardez avec nous sur {website}",
        "contact_text": "Texto au {number}",
        "contact_email": "Courriel : {email}",
        "contact_phone": "Téléphone : {phone}",
        "back": "Retour au centre d'aide",
        "not_found_title": "Page introuvable",
        "not_found": "Aucune réponse à cette adresse. Elle a peut-être été déplacée ou retirée.",
        "limited_title": "Trop de demandes",
        "limited": "Veuillez attendre une minute et réessayer.",
        "cross_site_title": "Non envoyé",
        "cross_site": "Ce formulaire ne peut être envoyé que depuis les pages d'aide de la Ville.",
    },
}

TOPICS: dict[str, dict[str, str]] = {
    "waste": {"en": "Garbage and recycling", "fr": "Ordures et recyclage"},
    "roads": {"en": "Roads, sidewalks and snow", "fr": "Routes, trottoirs et neige"},
    "parking": {"en": "Parking", "fr": "Stationnement"},
    "animals": {"en": "Pets and animals", "fr": "Animaux"},
    "taxes": {"en": "Property tax", "fr": "Impôt foncier"},
    "recreation": {"en": "Recreation", "fr": "Loisirs"},
    "trees": {"en": "Trees", "fr": "Arbres"},
    "bylaw": {"en": "By-laws and neighbours", "fr": "Règlements et voisinage"},
    "permits": {"en": "Permits", "fr": "Permis"},
    "licences": {"en": "Licences", "fr": "Licences"},
    "water": {"en": "Water and sewers", "fr": "Eau et égouts"},
    "parks": {"en": "Parks", "fr": "Parcs"},
}

MONTHS = {
    "fr": [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ],
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
}


def topic_name(topic: str, lang: str) -> str:
    names = TOPICS.get(topic)
    return names[lang] if names else topic.replace("-", " ").capitalize()


def long_date(year: int, month: int, day: int, lang: str) -> str:
    if lang == "fr":
        return f"{day} {MONTHS['fr'][month - 1]} {year}"
    return f"{MONTHS['en'][month - 1]} {day}, {year}"
