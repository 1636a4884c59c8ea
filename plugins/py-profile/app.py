"""py-profile: a Vaultaris plugin written in Python (componentize-py).

"Profile rules". Two categories in one component:

* input-validator: enforces configurable profile field rules and returns
  field-level violations with stable codes:
    - ``required``       a required field is missing or empty
    - ``too_long``       a text field exceeds its maximum length (code points)
    - ``invalid_format`` the username does not match ``username_pattern``
    - ``blocked_word``   a username or display name contains a blocked word
* jwt-customizer: adds a ``profile_complete`` boolean claim (every attribute in
  ``profile_complete_attributes`` present and non-empty) and a ``locale``
  claim (from the ``locale_attribute`` subject attribute, else
  ``default_locale``).

Configuration (all keys optional; see manifest.json for the JSON Schema)::

    {
      "required": {"user_create": ["email"], "self_registration": ["email", "username"],
                   "user_update": []},
      "max_lengths": {"given_name": 100, "attributes/department": 64},
      "username_pattern": "^[a-z][a-z0-9_.-]{2,31}$",
      "blocked_words": ["admin", "root"],
      "blocked_word_fields": ["username", "name", "given_name", "family_name",
                              "nickname", "preferred_username", "display_name"],
      "profile_complete_attributes": ["email", "given_name", "family_name"],
      "locale_attribute": "locale",
      "default_locale": "en",
      "token_kinds": ["access", "id"]
    }

The configuration is read through the ``config`` capability on the first call
and cached in module state (the host discards warm instances when it
changes). It must not be read at import time: componentize-py runs the
module's top level at build time to pre-initialise the component, when there
is no host.

Binding modules are imported under explicit names (``host_log``): the
generated ``wit_world.imports.logging`` and ``wit_world.imports.random`` must
never be bound to the names ``logging``/``random`` here, where they would
shadow the standard library modules of the same names.
"""

import json
import re
import unicodedata

import wit_world
from componentize_py_types import Err
from wit_world.exports import input_validator as iv
from wit_world.exports import jwt_customizer as jc
from wit_world.imports import config as host_config
from wit_world.imports import logging as host_log
from wit_world.imports import types as t

_OPERATIONS = {
    iv.Operation.USER_CREATE: "user_create",
    iv.Operation.SELF_REGISTRATION: "self_registration",
    iv.Operation.USER_UPDATE: "user_update",
    iv.Operation.PASSWORD_CHANGE: "password_change",
}
# Operations `required` can be configured for (profile rules do not apply to
# password changes).
_REQUIRED_OPS = ("user_create", "self_registration", "user_update")
_DEFAULT_BLOCKED_WORD_FIELDS = (
    "username", "name", "given_name", "family_name", "nickname", "preferred_username", "display_name",
)
_LOCALE_RE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_NON_ALNUM = re.compile(r"[\W_]+", re.UNICODE)
_MAX_VIOLATIONS = 64

# End-user messages (never echo a value: it may be a password). The first
# locale of the request whose language we support wins; English otherwise.
_MESSAGES = {
    "en": {
        "required": "This field is required.",
        "too_long": "This field must be at most {max} characters long.",
        "invalid_format": "This username is not allowed: use the permitted characters and length.",
        "blocked_word": "This contains a word that is not allowed.",
    },
    "de": {
        "required": "Dieses Feld ist erforderlich.",
        "too_long": "Dieses Feld darf höchstens {max} Zeichen lang sein.",
        "invalid_format": "Dieser Benutzername ist nicht zulässig: verwenden Sie die erlaubten Zeichen und Längen.",
        "blocked_word": "Dies enthält ein nicht zulässiges Wort.",
    },
    "fr": {
        "required": "Ce champ est obligatoire.",
        "too_long": "Ce champ ne doit pas dépasser {max} caractères.",
        "invalid_format": "Ce nom d'utilisateur n'est pas autorisé : utilisez les caractères et la longueur permis.",
        "blocked_word": "Ce texte contient un mot non autorisé.",
    },
}


def _err(case, code, message):
    return Err(case(t.ErrorDetail(code=code, message=message)))


def _misconfigured(message):
    return _err(t.PluginError_Misconfigured, "invalid_config", message)


def _normalise(text):
    return unicodedata.normalize("NFKC", text).casefold()


class _Rules:
    """The configuration, validated and pre-compiled once per instance."""

    def __init__(self, doc):
        if not isinstance(doc, dict):
            raise _misconfigured("configuration must be a JSON object")

        required = doc.get("required", {})
        if not isinstance(required, dict):
            raise _misconfigured("`required` must be an object")
        self.required = {}
        unknown = set(required) - set(_REQUIRED_OPS)
        if unknown:
            raise _misconfigured(f"`required` has unknown operations: {sorted(unknown)}")
        for op in _REQUIRED_OPS:
            names = required.get(op, [])
            if not _is_str_list(names):
                raise _misconfigured(f"`required.{op}` must be an array of field names")
            self.required[op] = tuple(dict.fromkeys(names))

        max_lengths = doc.get("max_lengths", {})
        if not isinstance(max_lengths, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in max_lengths.values()
        ):
            raise _misconfigured("`max_lengths` must map field names to positive integers")
        self.max_lengths = dict(max_lengths)

        pattern = doc.get("username_pattern")
        self.username_re = None
        if pattern is not None:
            if not isinstance(pattern, str):
                raise _misconfigured("`username_pattern` must be a string")
            try:
                self.username_re = re.compile(pattern)
            except re.error as e:
                raise _misconfigured(f"`username_pattern` is not a valid regular expression: {e}")

        words = doc.get("blocked_words", [])
        if not _is_str_list(words):
            raise _misconfigured("`blocked_words` must be an array of strings")
        # Matched on a normalised form (NFKC, case-folded, separators removed),
        # so `Ad_Min` and `ＡＤＭＩＮ` hit `admin`.
        self.blocked = tuple(dict.fromkeys(w for w in (_NON_ALNUM.sub("", _normalise(x)) for x in words) if w))
        fields = doc.get("blocked_word_fields", list(_DEFAULT_BLOCKED_WORD_FIELDS))
        if not _is_str_list(fields):
            raise _misconfigured("`blocked_word_fields` must be an array of field names")
        self.blocked_fields = frozenset(fields)

        complete = doc.get("profile_complete_attributes")
        if complete is None:
            # Default: what registration or creation requires, as attribute
            # names (`attributes/x` -> `x`), never the password.
            names = self.required["self_registration"] + self.required["user_create"]
            complete = [n[len("attributes/"):] if n.startswith("attributes/") else n for n in names]
            complete = [n for n in dict.fromkeys(complete) if n != "password"]
        if not _is_str_list(complete):
            raise _misconfigured("`profile_complete_attributes` must be an array of attribute names")
        self.complete_attrs = frozenset(complete)

        self.locale_attr = doc.get("locale_attribute", "locale")
        if not isinstance(self.locale_attr, str) or not self.locale_attr:
            raise _misconfigured("`locale_attribute` must be a non-empty string")
        default_locale = doc.get("default_locale")
        if default_locale is not None and not (isinstance(default_locale, str) and _LOCALE_RE.fullmatch(default_locale)):
            raise _misconfigured("`default_locale` must be a BCP 47 language tag")
        self.default_locale_json = json.dumps(default_locale) if default_locale is not None else None

        kinds = doc.get("token_kinds", ["access", "id"])
        if not _is_str_list(kinds) or not set(kinds) <= {"access", "id"}:
            raise _misconfigured('`token_kinds` must be an array of "access" and/or "id"')
        self.kinds = frozenset(jc.TokenKind.ACCESS if k == "access" else jc.TokenKind.ID for k in kinds)

        # Fields the validator has to look at, to skip the rest cheaply.
        self.checked_fields = frozenset(self.max_lengths) | self.blocked_fields | {"username"}


def _is_str_list(v):
    return isinstance(v, list) and all(isinstance(x, str) and x for x in v)


_rules = None


def _get_rules():
    global _rules
    if _rules is None:
        try:
            doc = json.loads(host_config.get_all())
        except ValueError as e:
            raise _misconfigured(f"configuration is not valid JSON: {e}")
        _rules = _Rules(doc)
    return _rules


def _guard(fn, *args):
    """Runs fn; anything but a plugin-error becomes `internal` (not a trap)."""
    try:
        return fn(*args)
    except Err:
        raise
    except Exception as e:  # a bug: report it rather than trapping
        try:
            host_log.log(host_log.Level.ERROR, f"unexpected exception: {type(e).__name__}", [])
        except Exception:
            pass
        raise _err(t.PluginError_Internal, "unexpected_exception", f"{type(e).__name__}: {e}")


# ---------------------------------------------------------------- validator


def _messages(locales):
    for loc in locales:
        m = _MESSAGES.get(loc.split("-", 1)[0].lower())
        if m is not None:
            return m
    return _MESSAGES["en"]


def _is_empty(value):
    return value is None or value == "" or value == [] or value == {} or (isinstance(value, str) and not value.strip())


def _validate(request):
    rules = _get_rules()
    op = _OPERATIONS[request.operation]
    if op == "password_change":
        return []  # profile rules do not apply to password changes
    msgs = None
    violations = []

    def add(field, code, **fmt):
        nonlocal msgs
        if msgs is None:
            msgs = _messages(request.locales)
        violations.append(iv.Violation(field=field, code=code, message=msgs[code].format(**fmt)))

    present = {}
    for f in request.fields:
        present[f.name] = f
    # `required` applies to the complete proposed state (update included: a
    # required field cannot be cleared).
    for name in rules.required[op]:
        f = present.get(name)
        if f is None:
            add(name, "required")
            continue
        try:
            value = json.loads(f.value)
        except ValueError:
            raise _err(t.PluginError_InvalidInput, "invalid_json", f"field {name} is not valid JSON")
        if _is_empty(value):
            add(name, "required")

    # The other rules apply to the fields this operation changes, so values
    # that predate a rule do not block unrelated updates.
    checked = rules.checked_fields
    for name in request.changed:
        if name not in checked or name == "password":
            continue
        f = present.get(name)
        if f is None:
            continue
        try:
            value = json.loads(f.value)
        except ValueError:
            raise _err(t.PluginError_InvalidInput, "invalid_json", f"field {name} is not valid JSON")
        if not isinstance(value, str):
            continue
        limit = rules.max_lengths.get(name)
        if limit is not None and len(value) > limit:
            add(name, "too_long", max=limit)
        if name == "username" and rules.username_re is not None and value and not rules.username_re.fullmatch(value):
            add(name, "invalid_format")
        if rules.blocked and name in rules.blocked_fields and value:
            norm = _NON_ALNUM.sub("", _normalise(value))
            if any(w in norm for w in rules.blocked):
                add(name, "blocked_word")
    return violations[:_MAX_VIOLATIONS]


class InputValidator(wit_world.exports.InputValidator):
    def validate(self, ctx, request):
        return _guard(_validate, request)


# ----------------------------------------------------------- jwt-customizer

_EMPTY = jc.Customization(add=[], remove=[])
_TRUE = jc.Claim(name="profile_complete", value="true")
_FALSE = jc.Claim(name="profile_complete", value="false")


def _attr_present(value):
    if isinstance(value, t.AttributeValue_Text):
        return bool(value.value.strip())
    if isinstance(value, t.AttributeValue_TextList):
        return len(value.value) > 0
    if isinstance(value, t.AttributeValue_Json):
        return value.value not in ("null", '""', "[]", "{}")
    return True  # integer, boolean


def _customize(request):
    rules = _get_rules()
    if request.kind not in rules.kinds or request.subject is None:
        return _EMPTY  # other token kind, or a client's own token: no profile
    complete = rules.complete_attrs
    locale_attr = rules.locale_attr
    found = 0
    locale = None
    for a in request.subject_attributes:
        name = a.name
        if name in complete and _attr_present(a.value):
            found += 1
        if name == locale_attr and isinstance(a.value, t.AttributeValue_Text) and _LOCALE_RE.fullmatch(a.value.value):
            locale = a.value.value
    add = [_TRUE if found == len(complete) else _FALSE]
    if locale is not None:
        add.append(jc.Claim(name="locale", value=json.dumps(locale)))
    elif rules.default_locale_json is not None:
        add.append(jc.Claim(name="locale", value=rules.default_locale_json))
    return jc.Customization(add=add, remove=[])


class JwtCustomizer(wit_world.exports.JwtCustomizer):
    def customize(self, ctx, request):
        return _guard(_customize, request)
