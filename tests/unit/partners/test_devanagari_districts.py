"""Issue 13, Nepal: district names printed in Devanagari, as on citizenship certificates.

The adapter's list is the ``nepali`` package's (opensource-nepal); the second, independent
list checked here is ``nepali-address`` 0.1.4's (its own Nepali names of the 77 districts,
spelled differently in places: संखुवासभा, लम्जुङ, काभ्रेपलाञ्चोक, कालीकोट, डांग, पूर्वी रुकुम).
"""

from __future__ import annotations

import nepali_address
import pytest

from adapters.partners.common.ctz import canonical_district, parse_ctz


@pytest.mark.parametrize("district", nepali_address.get_districts(),
                         ids=lambda d: str(d["name"]))
def test_every_district_of_a_second_list_is_read_in_devanagari(district: dict[str, str]) -> None:
    assert canonical_district(district["name_ne"]) == canonical_district(district["name"])


@pytest.mark.parametrize(
    ("district", "canonical"),
    [
        ("काठमाडौं", "KATHMANDU"), ("काठमाडौँ", "KATHMANDU"), ("काठमाण्डौ", "KATHMANDU"),
        ("सङ्खुवासभा", "SANKHUWASABHA"), ("लमजुङ", "LAMJUNG"), ("कञ्‍चनपुर", "KANCHANPUR"),
        ("नवलपरासी", "NAWALPARASI"), ("रुकुम", "RUKUM"),  # issued before the 2015 split
        ("नवलपरासी (बर्दघाट सुस्ता पश्चिम)", "NAWALPARASI_WEST"), ("रूकुम पूर्व", "RUKUM_EAST"),
    ],
)
def test_devanagari_spellings_on_certificates_are_accepted(district: str,
                                                          canonical: str) -> None:
    assert parse_ctz(district, "२७-०१-७१-१२३४५") == f"{canonical}:27-01-71-12345"


@pytest.mark.parametrize("district", ["लन्डन", "काठमाडौं सहर", "नवलपरासी उत्तर"])
def test_a_devanagari_name_that_is_no_district_is_refused(district: str) -> None:
    with pytest.raises(ValueError, match="is not one of Nepal's 77 districts .* in Devanagari"):
        canonical_district(district)
