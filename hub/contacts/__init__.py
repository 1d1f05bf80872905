"""Contacts: who a customer is (name, email, phone numbers)."""
