"""The 18-digit resident identity number of the PRC (GB 11643-1999): its check character (ISO 7064 MOD 11-2) and
the date of birth it holds — from which the wallet derives only the day its holder is 18. Neither the number nor
the date of birth is kept."""

from __future__ import annotations

from datetime import date

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"
ADULT_AGE = 18


def valid(number: str) -> bool:
    """17 digits, then the check character of them (a digit or X)."""
    n = number.strip().upper()
    return (len(n) == 18 and n[:17].isdigit() and
            CHECK[sum(int(d) * w for d, w in zip(n[:17], WEIGHTS, strict=True)) % 11] == n[17])


def birth_date(number: str) -> date | None:
    """The date of birth of a valid number (None: not a valid 18-digit number, or no real date in it)."""
    if not valid(number):
        return None
    n = number.strip()
    try:
        return date(int(n[6:10]), int(n[10:12]), int(n[12:14]))
    except ValueError:
        return None


def adult_from(number: str, today: date) -> date | None:
    """The day the holder is 18 (born 29 February: 1 March), or None when the number does not say (not a valid
    18-digit number, or born after ``today``)."""
    born = birth_date(number)
    if born is None or born > today:
        return None
    try:
        return born.replace(year=born.year + ADULT_AGE)
    except ValueError:  # 29 February, 18 years on: not a leap year
        return date(born.year + ADULT_AGE, 3, 1)
