"""Web chat: the resident's widget and WebSocket, conversations as tickets, resume after reconnects."""
