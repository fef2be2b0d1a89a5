"""The product around the model: reference suggestions for a folder of photos, and the web app."""
