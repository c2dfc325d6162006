"""The course's sample service: an order API, first written badly (legacy_service), then the 12-factor way (service)."""
