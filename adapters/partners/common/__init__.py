"""Pure translations between partner-native spellings and the gateway's canonical ones.

Partner adapters call these at their edge; each function either returns the canonical (or the
partner's) spelling or raises ``ValueError`` naming the field and what is wrong with it. No I/O,
no configuration: what a partner sends is the adapter's business, how to read it is here.

- ``digits``        Myanmar / Devanagari / Bengali digits <-> ASCII (digits only, never names)
- ``nrc``           Myanmar NRC, ASCII or Burmese script <-> MM-NRC
- ``ctz``           Nepali citizenship certificate (district, number) <-> NP-CTZ
- ``cnic``          Pakistani CNIC ``12345-1234567-1`` <-> PK-CNIC
- ``bikram_sambat`` Bikram Sambat ``YYYY-MM-DD`` <-> Gregorian dates, exact, in a fixed range
- ``dates``         ``DD/MM/YYYY`` dates; offset timestamps <-> aware UTC datetimes
"""
