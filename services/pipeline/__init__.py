"""The moderated chat flow (steps 1-7 of the seed): input check, generate, output check, template."""
