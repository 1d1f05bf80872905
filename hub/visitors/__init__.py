"""Website visitors: their contacts, page views and visits, live presence,
and proactive campaigns."""
