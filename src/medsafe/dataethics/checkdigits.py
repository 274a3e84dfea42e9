"""Check digits of the national identifiers the detectors validate.

- Chinese resident identity number (GB 11643-1999): 17 digits and a check character computed
  with ISO/IEC 7064 MOD 11-2: ``sum(d_i * 2^(17-i) mod 11)`` over the 17 digits (i = 0..16,
  left to right), then the check value ``c`` with ``(sum + c) mod 11 == 1``; 10 is written ``X``.
- Japanese My Number (個人番号; 番号法施行令 第8条 and the ministerial ordinance of the Ministry
  of Internal Affairs and Communications it refers to, 第5条): 11 digits ``P_1..P_11``
  numbered from the right and a check digit
  ``11 - (sum(P_n * Q_n) mod 11)``, where ``Q_n = n + 1`` for n <= 6 and ``n - 5`` for n >= 7;
  0 when the remainder is 0 or 1.
"""

from __future__ import annotations

__all__ = ["cn_id_check", "cn_id_valid", "my_number_check", "my_number_valid"]


def cn_id_check(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character (``0``-``9`` or ``X``) of 17 digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("a resident ID body is 17 digits")
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(first17))
    check = (12 - total % 11) % 11
    return "X" if check == 10 else str(check)


def cn_id_valid(number: str) -> bool:
    """Whether an 18-character resident ID has the right check character (``x`` accepted)."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    return cn_id_check(number[:17]) == number[17].upper()


def my_number_check(first11: str) -> int:
    """The check digit of an 11-digit My Number body."""
    if len(first11) != 11 or not first11.isdigit():
        raise ValueError("a My Number body is 11 digits")
    total = 0
    for n, digit in enumerate(reversed(first11), start=1):
        weight = n + 1 if n <= 6 else n - 5
        total += int(digit) * weight
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def my_number_valid(number: str) -> bool:
    """Whether 12 digits are a My Number with the right check digit."""
    if len(number) != 12 or not number.isdigit():
        return False
    return my_number_check(number[:11]) == int(number[11])
