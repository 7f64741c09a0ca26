"""The parties of the provider's unit tests: a Spanish requester and provider, and María José García Márquez.

García Márquez is in Spain's sample registers (births, diplomas, residence), so requests about her match.
"""

from __future__ import annotations

import datetime as dt

from oots.edm import Agent, Identifier, LevelOfAssurance, Person, Text

__all__ = ["GARCIA", "PROVIDER", "REQUESTER"]

REQUESTER = Agent(Identifier("ESS9990002B", "urn:cef.eu:names:identifier:EAS:9920"), (Text("Sede", "ES"),))
PROVIDER = Agent(Identifier("ESS9990001A", "urn:cef.eu:names:identifier:EAS:9920"), (Text("Ministerio", "ES"),))
GARCIA = Person(
    family_name="García Márquez",
    given_name="María José",
    date_of_birth=dt.date(1982, 10, 7),
    identifier=Identifier("ES/ES/12345678Z", "eidas"),
    level_of_assurance=LevelOfAssurance.HIGH,
)
