"""Author-year citations and bibliography for the book: a Sphinx extension, loaded through
``sphinx: local_extensions`` in book/_config.yml (book/build.py copies this folder into the
build).

It registers two styles, chosen in book/_config.yml:

* the pybtex formatting style ``author_year`` (``bibtex_default_style``): pybtex's ``plain``
  style (entries sorted by author, year and title) whose labels are author and year,
  "Holm, 1979", "Bauer and Lesnick, 2015", "Hu et al., 2019" (:class:`AuthorYearLabelStyle`),
  and whose author lists end in "et al." where the .bib entry does;
* the sphinxcontrib-bibtex referencing style ``author_year_et_al``
  (``bibtex_reference_style``): its ``author_year`` style, with "et al." there too.

BibTeX writes an author list that is not given in full as ``Sofi, Shakir Showkat and others``;
pybtex reads ``others`` as one more person, and both styles above would print "Sofi and others".
Here that trailing ``others`` becomes "et al." (as in BibTeX's own author-year styles). Titles
keep pybtex's sentence case; a word that must keep its capitals is braced in references.bib
(``{clDice}``, ``{U-Net}``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from string import ascii_lowercase

import pybtex.plugin
import sphinxcontrib.bibtex.plugin
from pybtex.richtext import Text
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.template import FieldIsMissing, first_of, join, node, optional, sentence, tag
from pybtex.style.template import field as bib_field
from sphinxcontrib.bibtex.style.referencing import PersonStyle
from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle
from sphinxcontrib.bibtex.style.template import join as reference_join

ET_AL = "et al."


def split_others(persons: list) -> tuple[list, bool]:
    """The named persons of an author list, and whether the list ended in BibTeX's ``others``
    (which pybtex reads as a person whose last name is "others")."""
    named = [person for person in persons if str(person) != "others"]
    return named, len(named) < len(persons)


def last_name(person) -> str:
    """A person's last name with its "von" part, LaTeX accents decoded: ``Br{\\"u}el`` -> Brüel."""
    latex = " ".join(person.prelast_names + person.last_names)
    return Text.from_latex(latex).render_as("text")


def author_year_label(entry) -> str:
    """``"Holm, 1979"``, ``"Bauer and Lesnick, 2015"`` or ``"Hu et al., 2019"`` (three or more
    authors, or a list ending in ``others``); the editors where there are no authors, the
    citation key where there are neither."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    named, others = split_others(persons)
    year = entry.fields.get("year", "n.d.")
    if not named:
        return f"{entry.key}, {year}"
    if len(named) == 1 and not others:
        who = last_name(named[0])
    elif len(named) == 2 and not others:
        who = f"{last_name(named[0])} and {last_name(named[1])}"
    else:
        who = f"{last_name(named[0])} {ET_AL}"
    return f"{who}, {year}"


class AuthorYearLabelStyle(BaseLabelStyle):
    """Labels by author and year (:func:`author_year_label`); labels that would be equal get
    a letter, "Hu et al., 2019a" and "Hu et al., 2019b", in the order of the bibliography."""

    def format_labels(self, sorted_entries):
        labels = [author_year_label(entry) for entry in sorted_entries]
        count = Counter(labels)
        seen: Counter = Counter()
        for label in labels:
            if count[label] == 1:
                yield label
            else:
                yield label + ascii_lowercase[seen[label] % 26]
                seen[label] += 1


@node
def names_et_al(children, context, role, sep="", sep2=None, last_sep=None):
    """pybtex's ``names`` template, except that a list ending in ``others`` is the named
    persons joined by ``sep`` and then "et al." ("A, B et al.", not "A, B, and others")."""
    if children:
        raise ValueError(children)
    try:
        persons = context["entry"].persons[role]
    except KeyError:
        raise FieldIsMissing(role, context["entry"]) from None
    style = context["style"]
    named, others = split_others(persons)
    formatted = [style.format_name(person, style.abbreviate_names) for person in named]
    if others:
        return Text(join(sep=sep)[formatted].format_data(context), " ", ET_AL)
    return join(sep=sep, sep2=sep2, last_sep=last_sep)[formatted].format_data(context)


class AuthorYearStyle(PlainStyle):
    """pybtex's ``plain`` style with :class:`AuthorYearLabelStyle` labels and "et al." for a
    list that ends in ``others``."""

    default_label_style = "author_year"

    def format_names(self, role, as_sentence=True):
        formatted = names_et_al(role, sep=", ", sep2=" and ", last_sep=", and ")
        return sentence[formatted] if as_sentence else formatted


@node
def reference_names(children, data, role, sep, sep2, last_sep, other, full):
    """sphinxcontrib-bibtex's ``names`` template for citations in the text, except that a
    list ending in ``others`` is shortened like a list of three or more ("Sofi et al.", not
    "Sofi and others"); with ``full`` (the ``:cite:ts:`` roles) every named person is kept."""
    if children:
        raise ValueError(children)
    try:
        persons = data["entry"].persons[role]
    except KeyError:
        raise FieldIsMissing(role, data["entry"]) from None
    person_style = data["style"].person
    named, others = split_others(persons)
    formatted = [
        person_style.style_plugin.format(person, person_style.abbreviate) for person in named
    ]
    if others:
        shown = formatted if full else formatted[:1]
        return Text(reference_join(sep=sep)[shown].format_data(data), other)
    return reference_join(
        sep=sep, sep2=sep2, last_sep=last_sep, other=None if full else other
    )[formatted].format_data(data)


@dataclass
class EtAlPersonStyle(PersonStyle):
    """sphinxcontrib-bibtex's person style, with :func:`reference_names` for the names and a
    plain "et al." (as in the bibliography)."""

    other: object = field(default_factory=lambda: Text(" ", ET_AL))

    def names(self, role: str, full: bool):
        return reference_names(
            role=role, sep=self.sep, sep2=self.sep2, last_sep=self.last_sep, other=self.other,
            full=full,
        )

    def author_or_editor_or_title(self, full: bool):
        return first_of[
            optional[self.names("author", full)],
            optional[self.names("editor", full)],
            tag("em")[bib_field("title")],
        ]


@dataclass
class AuthorYearEtAlReferenceStyle(AuthorYearReferenceStyle):
    """sphinxcontrib-bibtex's ``author_year`` citations with :class:`EtAlPersonStyle`."""

    person: PersonStyle = field(default_factory=EtAlPersonStyle)


def register() -> None:
    """Register the styles under the names book/_config.yml uses."""
    pybtex.plugin.register_plugin(
        "pybtex.style.labels", "author_year", AuthorYearLabelStyle, force=True
    )
    pybtex.plugin.register_plugin(
        "pybtex.style.formatting", "author_year", AuthorYearStyle, force=True
    )
    sphinxcontrib.bibtex.plugin.register_plugin(
        "sphinxcontrib.bibtex.style.referencing",
        "author_year_et_al",
        AuthorYearEtAlReferenceStyle,
        force=True,
    )


def setup(app) -> dict:
    """Sphinx entry point: registers the styles (before sphinxcontrib-bibtex looks them up,
    when the builder starts)."""
    register()
    return {"parallel_read_safe": True, "parallel_write_safe": True}
