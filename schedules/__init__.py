"""The scheduler and the serve process."""
