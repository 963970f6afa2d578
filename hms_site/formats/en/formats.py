# 6 December 2026, 14:05: the day first and a 24-hour clock, as people in the city write it.
DATE_FORMAT = "j F Y"
DATETIME_FORMAT = "j F Y, H:i"
