"""The usage report: its data (data.py), csv (csvout.py), html (html.py) and simulated history."""
