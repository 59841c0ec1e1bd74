"""The dashboard at /: static pages and ES modules shipped in the package, no build step."""
