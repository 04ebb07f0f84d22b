"""The customer stamp page: ``/s/{token}``, its QR code, the PIN and the on-site staff flow."""
