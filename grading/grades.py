"""The twelve grades (年级) and the three school bands (学段)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from grading.errors import UnknownGradeError


class Band(StrEnum):
    PRIMARY = "primary"  # 小学
    JUNIOR = "junior"  # 初中
    SENIOR = "senior"  # 高中

    @property
    def name_zh(self) -> str:
        return {"primary": "小学", "junior": "初中", "senior": "高中"}[self.value]


@dataclass(frozen=True, kw_only=True)
class Grade:
    code: str  # g01 … g12
    number: int  # 1 … 12
    name_zh: str
    band: Band


_NAMES_ZH = (
    "一年级", "二年级", "三年级", "四年级", "五年级", "六年级",
    "七年级", "八年级", "九年级", "高一", "高二", "高三",
)  # fmt: skip


def _band_for_number(number: int) -> Band:
    if number <= 6:
        return Band.PRIMARY
    if number <= 9:
        return Band.JUNIOR
    return Band.SENIOR


GRADES: tuple[Grade, ...] = tuple(
    Grade(code=f"g{n:02d}", number=n, name_zh=_NAMES_ZH[n - 1], band=_band_for_number(n))
    for n in range(1, 13)
)
_BY_CODE = {g.code: g for g in GRADES}


def grade_by_code(code: str) -> Grade:
    """Look up a grade by code (g01…g12); also accepts its Chinese name."""
    grade = _BY_CODE.get(code.strip().lower())
    if grade is None:
        grade = next((g for g in GRADES if g.name_zh == code.strip()), None)
    if grade is None:
        raise UnknownGradeError(f"unknown grade {code!r}: use one of g01…g12 (一年级 … 高三)")
    return grade


def band_of(code: str) -> Band:
    return grade_by_code(code).band


def grades_in_band(band: Band) -> tuple[Grade, ...]:
    return tuple(g for g in GRADES if g.band is band)
