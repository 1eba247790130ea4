"""The report: needs and cost per OPD from the usage history, as json, csv and html."""
