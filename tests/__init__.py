"""The viabtc trial suite; it mirrors the viabtc package."""
