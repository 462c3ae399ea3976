"""One agent per consumed topic; each is a thin shell over a stage's handle()."""
