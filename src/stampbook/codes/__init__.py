"""Single-use receipt and till codes: one QR, one claim, the code's stamps on a card."""
