"""Reports for people: compile report (HTML/Markdown), emulation plots, VCD waveforms, progress."""
