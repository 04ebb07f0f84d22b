"""Apple Wallet and Google Wallet passes that update (docs/wallet.md)."""
