"""The fixed identities tests use: the fake Twilio account, the city's number, the hub's public URL."""

ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
CITY_NUMBER = "+19055550100"
PUBLIC_URL = "https://hub.test"
