#!/usr/bin/env python3
"""A practice-management database for the patient-portal example (SQLite, stdlib only).

    generate.py [--db practice.db] [--patients 200] [--seed 7] [--today YYYY-MM-DD]
    generate.py --db practice.db --change     # a day of edits: moved, cancelled, renamed, consent withdrawn

Tables: patients (with a national id and consent), appointments (with a free-text reason, the
diagnosis), notes (clinical notes). The national id, the reasons and the notes must never leave
the practice; weir.toml here makes sure of it. Appointments lie between 30 days before and 30
days after --today (default: today), so "next week" always has some. Every change sets
updated_at past the newest one in the database, so weir's incremental reads see it.
"""

import argparse
import datetime as dt
import random
import sqlite3

FIRST = ["Ada", "Bruno", "Chloé", "Dario", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas",
         "Katrin", "Luca", "Mia", "Noah", "Olga", "Pietro", "Rahel", "Samuel", "Tanja", "Urs"]
LAST = ["Keller", "Meier", "Schmid", "Huber", "Weber", "Brunner", "Frei", "Baumann", "Rossi",
        "Favre", "Moser", "Graf", "Wyss", "Zürcher", "Bianchi", "Steiner"]
CLINICIANS = ["Dr. Amsler", "Dr. Berger", "Dr. Conti", "Dr. Dubois"]
REASONS = ["hypertension follow-up", "type 2 diabetes, HbA1c check", "lower back pain",
           "asthma review", "depressive episode, talk therapy", "suspected melanoma",
           "post-op wound check", "HIV PrEP consultation", "migraine", "pregnancy week 20"]

SCHEMA = """
CREATE TABLE patients (
  id INTEGER PRIMARY KEY,
  first_name TEXT NOT NULL,
  last_name TEXT NOT NULL,
  national_id TEXT NOT NULL,
  birth_date DATE NOT NULL,
  phone TEXT,
  email TEXT,
  consent BOOLEAN NOT NULL,
  consent_withdrawn_at DATETIME,
  updated_at DATETIME NOT NULL,
  deleted_at DATETIME
);
CREATE TABLE appointments (
  id INTEGER PRIMARY KEY,
  patient_id INTEGER NOT NULL REFERENCES patients(id),
  starts_at DATETIME NOT NULL,
  clinician TEXT NOT NULL,
  room TEXT NOT NULL,
  reason TEXT NOT NULL,
  updated_at DATETIME NOT NULL,
  cancelled_at DATETIME
);
CREATE TABLE notes (
  id INTEGER PRIMARY KEY,
  patient_id INTEGER NOT NULL REFERENCES patients(id),
  written_at DATETIME NOT NULL,
  text TEXT NOT NULL
);
"""


def stamp(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S")


def generate(db, patients, seed, today):
    rng = random.Random(seed)
    start = dt.datetime.combine(today, dt.time(8, 0)) - dt.timedelta(days=90)
    clock = start
    db.executescript(SCHEMA)
    for pid in range(1, patients + 1):
        clock += dt.timedelta(minutes=rng.randint(1, 30))
        first, last = rng.choice(FIRST), rng.choice(LAST)
        db.execute(
            "INSERT INTO patients VALUES (?,?,?,?,?,?,?,?,?,?,NULL)",
            (pid, first, last,
             f"756.{rng.randint(1000, 9999)}.{rng.randint(1000, 9999)}.{rng.randint(10, 99)}",
             f"{rng.randint(1940, 2015)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
             f"+41 79 {rng.randint(100, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
             f"{first.lower()}.{last.lower()}{pid}@example.ch",
             rng.random() < 0.85, None, stamp(clock)))
        for _ in range(rng.randint(0, 5)):
            day = today + dt.timedelta(days=rng.randint(-30, 30))
            starts = dt.datetime.combine(day, dt.time(rng.randint(8, 17), rng.choice([0, 20, 40])))
            clock += dt.timedelta(seconds=rng.randint(10, 600))
            db.execute(
                "INSERT INTO appointments (patient_id, starts_at, clinician, room, reason, updated_at)"
                " VALUES (?,?,?,?,?,?)",
                (pid, stamp(starts), rng.choice(CLINICIANS), f"{rng.randint(1, 3)}.{rng.randint(1, 12):02d}",
                 rng.choice(REASONS), stamp(clock)))
        db.execute("INSERT INTO notes (patient_id, written_at, text) VALUES (?,?,?)",
                   (pid, stamp(clock), f"Anamnesis: {rng.choice(REASONS)}; allergies: none known"))


def change(db, seed):
    """A day's edits, each stamped after the newest updated_at so incremental reads see them."""
    rng = random.Random(seed + 1)
    (newest,) = db.execute(
        "SELECT max(m) FROM (SELECT max(updated_at) AS m FROM patients"
        " UNION ALL SELECT max(updated_at) FROM appointments)").fetchone()
    clock = dt.datetime.strptime(newest, "%Y-%m-%dT%H:%M:%S")

    def tick():
        nonlocal clock
        clock += dt.timedelta(minutes=1)
        return stamp(clock)

    ids = [r[0] for r in db.execute("SELECT id FROM appointments WHERE cancelled_at IS NULL ORDER BY id")]
    moved = rng.sample(ids, 3)
    for aid in moved:
        db.execute("UPDATE appointments SET starts_at = strftime('%Y-%m-%dT%H:%M:%S', starts_at, '+1 day'),"
                   " updated_at = ? WHERE id = ?", (tick(), aid))
    cancelled = rng.sample([a for a in ids if a not in moved], 2)
    for aid in cancelled:
        now = tick()
        db.execute("UPDATE appointments SET cancelled_at = ?, updated_at = ? WHERE id = ?", (now, now, aid))
    consenting = [r[0] for r in db.execute("SELECT id FROM patients WHERE consent ORDER BY id")]
    renamed, withdrawn = rng.sample(consenting, 2)
    db.execute("UPDATE patients SET last_name = last_name || '-Graf', updated_at = ? WHERE id = ?",
               (tick(), renamed))
    now = tick()
    db.execute("UPDATE patients SET consent = 0, consent_withdrawn_at = ?, updated_at = ? WHERE id = ?",
               (now, now, withdrawn))
    print(f"moved appointments {moved} a day later, cancelled {cancelled}, "
          f"renamed patient {renamed}, patient {withdrawn} withdrew consent")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", default="practice.db")
    p.add_argument("--patients", type=int, default=200)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--today", type=dt.date.fromisoformat, default=dt.date.today())
    p.add_argument("--change", action="store_true", help="apply a day of edits to an existing database")
    a = p.parse_args()
    db = sqlite3.connect(a.db)
    with db:
        if a.change:
            change(db, a.seed)
        else:
            generate(db, a.patients, a.seed, a.today)
            counts = [db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                      for t in ("patients", "appointments", "notes")]
            print(f"{a.db}: {counts[0]} patients, {counts[1]} appointments, {counts[2]} notes")


if __name__ == "__main__":
    main()
