"""Cloudcart: an e-commerce backend for Azure Functions that also runs on a laptop."""
