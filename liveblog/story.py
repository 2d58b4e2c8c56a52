"""A demo story: the Tartus and Jableh bombings, as a newsroom would have covered them.

Facts from the news reports of 23 May 2016, every sentence in our own words. Each step is
data: who acts, and the API call they make. The demo, the screenshots and the benchmarks
replay it.
"""

from __future__ import annotations

from typing import Any, Literal

Who = Literal["editor", "reporter", "other_reporter"]
# (who, method, path under the blog, body). In a path, {n} stands for the id of the n-th
# entry the story posted (from 0); in a body, "{n}" likewise. The illustrations are paths on
# the site (static/demo/), so the log names no host or port: the blog shows them wherever
# it is served.
Step = tuple[Who, str, str, dict[str, Any]]

SLUG = "tartus-jableh"
TITLE = "Bombings in Tartus and Jableh"
DESCRIPTION = "Blasts hit two government-held coastal cities in Syria. Follow live."

STORY: list[Step] = [
    ("reporter", "POST", "entries", {
        "title": "Explosions in two coastal cities", "key_event": True,
        "body": "Several explosions have been reported in **Tartus** and **Jableh**, two "
                "government strongholds on the Syrian coast that the war had largely spared."}),
    ("reporter", "POST", "entries", {
        "title": "Bus station hit in Tartus",
        "body": "In Tartus, local media say a car packed with explosives struck a crowded "
                "bus station."}),
    ("other_reporter", "POST", "entries", {
        "body": "In Jableh, blasts were reported in a residential area on the outskirts, near "
                "a power plant, and outside Jableh National Hospital."}),
    ("reporter", "POST", "entries", {
        "body": "Smoke could be seen over Tartus shortly after the blasts.",
        "image": {"url": "/static/demo/tartus.svg",
                  "alt": "A column of smoke rising over the Tartus skyline",
                  "caption": "Tartus, shortly after the explosions (demo illustration).",
                  "credit": "Sana News / Reuters"}}),
    ("reporter", "PUT", "facts/deaths", {
        "label": "Deaths", "value": "at least 80", "numeric": 80,
        "source": "Associated Press"}),
    ("reporter", "POST", "entries", {
        "body": "The Associated Press puts the number of dead at **at least 80**. Neither the "
                "number of blasts nor the toll has been confirmed yet."}),
    ("other_reporter", "PUT", "facts/deaths", {
        "label": "Deaths", "value": "121", "numeric": 121,
        "source": "Syrian Observatory for Human Rights"}),
    ("other_reporter", "PUT", "facts/blasts", {
        "label": "Explosions", "value": "7 (4 in Jableh, 3 in Tartus)", "numeric": 7,
        "source": "Syrian Observatory for Human Rights"}),
    ("other_reporter", "POST", "entries", {
        "title": "Toll rises to 121, monitor says", "key_event": True,
        "body": "The London-based Syrian Observatory for Human Rights reports **121 dead** and "
                "says seven blasts went off almost at once: four in Jableh, three in Tartus."}),
    ("reporter", "POST", "entries", {
        "title": "Islamic State claims the attacks", "key_event": True,
        "body": "A news agency linked to the Islamic State group says its fighters carried out "
                "the bombings. The claim has not been independently verified."}),
    ("other_reporter", "POST", "entries", {
        "body": "Ambulances outside Jableh National Hospital, one of the places struck.",
        "image": {"url": "/static/demo/jableh.svg",
                  "alt": "Ambulances parked outside a hospital building",
                  "caption": "Jableh National Hospital (demo illustration).",
                  "credit": "Stringer / AFP / Getty Images"}}),
    ("other_reporter", "POST", "entries", {
        "body": "A BBC reporter has shared video said to show the aftermath of the bombing "
                "outside Jableh National Hospital.",
        "embed": {"url": "https://twitter.com/search?q=Jableh%20hospital"}}),
    ("reporter", "POST", "entries", {
        "body": "Russia, President Assad's ally, keeps a naval base in Tartus and an air base "
                "in neighbouring Latakia province."}),
    ("reporter", "POST", "entries", {
        "title": "Kremlin: attacks show how fragile Syria is", "key_event": True,
        "body": "Kremlin spokesman Dmitry Peskov says the bombings show how fragile the "
                "situation in Syria remains, and that talks must press on with vigour."}),
    ("reporter", "PATCH", "entries/{1}", {
        "body": "In Tartus, local media say a suicide bomber on foot and a car packed with "
                "explosives struck a crowded bus station.",
        "note": "Correction: there were two attackers, not one, per local media."}),
    ("editor", "PUT", "pinned", {"entry_id": "{5}"}),
]


def resolve(step: Step, posted: list[str]) -> tuple[str, dict[str, Any]]:
    """The step's path and body with {n} filled in."""
    _, _, path, body = step

    def fill(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: fill(inner) for key, inner in value.items()}
        if isinstance(value, str) and value.startswith("{") and value[1:-1].isdigit():
            return posted[int(value[1:-1])]
        return value

    return path.format(*posted), fill(body)
