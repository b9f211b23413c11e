"""Features: classical statistics (``statistics``) and V4's named streams (``streams``)."""
