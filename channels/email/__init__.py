"""Email channel: inbound SMTP/LMTP, IMAP polling, raw-MIME intake, MIME parsing."""
