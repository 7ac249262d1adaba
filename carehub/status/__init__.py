"""A resident's "My request" page: the expiring, revocable status link sent with every acknowledgement, the page
it opens (status in words, the conversation, a box to add a message) and the STATUS text keyword."""
