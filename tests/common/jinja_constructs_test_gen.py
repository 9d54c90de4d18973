#!/usr/bin/env python3
"""Prints the test bodies of jinja_constructs_test.cc: each template below is
rendered by Python Jinja2 (3.1.6) configured as transformers configures chat
templates, and the output becomes the expected string. Usage:
    python3 jinja_constructs_test_gen.py > /tmp/bodies.inc
then paste the bodies into jinja_constructs_test.cc (the file's header and
fixture are hand-written)."""
import json
import sys
from datetime import datetime

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(msg):
    raise jinja2.exceptions.TemplateError(msg)


class AssistantTracker(Extension):
    """transformers' {% generation %} tag (renders its body when not tracking)."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                    extensions=[AssistantTracker, loopcontrols])
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
env.filters["tojson"] = lambda x, ensure_ascii=False, indent=None, separators=None, sort_keys=False: \
    json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

# (test name, template, context) grouped by construct; expected values come from Python Jinja2.
CTX = {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
       "d": {"b": 1, "a": [1, 2]}, "n": None, "t": True, "s": " Hello World ", "i": 7, "f": 2.5}
GROUPS = {
"WhitespaceControl": [
  "a\n  {% if true %}\n  b\n  {% endif %}\nc\n",
  "  {{ 1 }}\n  {# c #}\nx",
  "{%- if true -%}   a   {%- endif -%}  b",
  "x {%+ if true %} y {% endif %}\n z",
  "  {%- if true %}a{% endif +%}\n  b",
  "a {# c -#}\n  b",
  "line1\r\nline2\r\n",
  "{% for x in [1, 2] %}\n{{ x }}\n{% endfor %}\n",
  "  {% raw %}\n {{ x }}\n  {% endraw %}\nz",
  "{{- '  a  ' -}}   {{ 'b' }}",
],
"Literals": [
  "{{ 'it''s' }}|{{ \"it's\" }}|{{ ['it\\'s', 'a\"b', 'a\"b\\'c'] }}",
  "{{ '\\x41\\u00e9\\n\\t\\q\\\\' }}",
  "{{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1.5e3 }} {{ 2.0 }} {{ 1e16 }} {{ 0.0001 }} {{ 0.00001 }}",
  "{{ true }} {{ True }} {{ none }} {{ None }} {{ false }}",
  "{{ [1, 'a', none, 1.5, {'k': [true]}] }} {{ (1,) }} {{ (1, 2) }} {{ () }}",
  "{{ {'a': {'b': 1}} }} {{ {} }}",
  "{{ 'a' 'b' }}",
],
"Arithmetic": [
  "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % -3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 6 / 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 2 ** 3 ** 2 }}",
  "{{ 1 + true }} {{ 1.5 + 1 }} {{ 0.1 + 0.2 }} {{ 1 / 3 }} {{ 10 % 3.5 }} {{ -7.5 // 2 }} {{ -0.0 }}",
  "{{ 'ab' * 3 }} {{ [1] * 2 }} {{ 3 * 'x' }} {{ [1, 2] + [3] }} {{ (1,) + (2,) }} {{ 'a' + 'b' }}",
  "{{ -i }} {{ +i }} {{ - -i }} {{ -f|abs }}",
  "{{ 1 ~ 2 ~ none ~ true ~ undefined_name }}",
],
"Comparisons": [
  "{{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' == 1 }} {{ none == none }} {{ [1, 2] == [1, 2] }} {{ {'a': 1} == {'a': 1} }}",
  "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'abc' < 'abd' }} {{ [1, 2] < [1, 3] }} {{ 2 >= 2 }} {{ 1 != 2 }}",
  "{{ 'b' in 'abc' }} {{ 1 in [1, 2] }} {{ 'a' in {'a': 1} }} {{ 3 not in [1] }} {{ 'x' in undefined_name }}",
],
"Logic": [
  "{{ 1 and 2 }}|{{ 0 and 2 }}|{{ 0 or '' }}|{{ none or 0 }}|{{ 'a' or 'b' }}|{{ not 1 }}|{{ not none }}",
  "{{ 'a' if 1 else 'b' }}|{{ 'a' if 0 else 'b' }}|{{ 'a' if 0 }}|{{ (1 if false) is defined }}",
  "{{ not true and false }} {{ not (true and false) }} {{ 1 in [1] and 2 not in [1] }}",
],
"Access": [
  "{{ messages[0].content }} {{ messages[1]['role'] }} {{ messages[-1].role }} {{ messages|length }}",
  "{{ d.b }} {{ d['a'][1] }} {{ d.a.0 }} {{ d.missing }}|{{ d['missing'] }}|{{ s.missing }}|{{ n.x }}",
  "{{ d.items is defined }} {{ d['items'] is defined }} {{ d.get('b') }} {{ [1, 2][5] }}|{{ 'abc'[1] }} {{ 'abc'[-1] }} {{ 'abc'[9] }}|",
  "{{ 'Hello'[1:-1] }} {{ 'Hello'[-3:] }} {{ [1, 2, 3, 4, 5][::2] }} {{ [1, 2, 3, 4, 5][1::2] }} {{ [1, 2, 3][5:] }} {{ 'abc'[::-1] }} {{ 'abc'[::-2] }} {{ messages[::-1]|map(attribute='role')|join(',') }}",
  "{{ 'héllo'|length }} {{ 'héllo'[1:3] }} {{ '日本語'[1] }} {{ '日本語'|reverse }}",
],
"Undefined": [
  "[{{ nope }}] {{ nope is defined }} {{ nope is undefined }} {{ not nope }} {{ nope|default('d') }} {{ nope|length }} {{ nope|list }}",
  "{% for x in nope %}a{% else %}empty{% endfor %} {{ 'a' in nope }} {{ nope|string }}|{{ nope|upper }}|",
  "{{ ''|default('e', true) }} {{ none|default('f') }} {{ 0|d('z', true) }}",
],
"If": [
  "{% if i > 5 %}big{% elif i > 2 %}mid{% else %}small{% endif %}|{% if not t %}x{% else %}y{% endif %}|{% if n %}a{% elif s %}b{% endif %}",
  "{% if true %}{% set z = 3 %}{% endif %}{{ z }}",
],
"For": [
  "{% for m in messages %}{{ loop.index }}/{{ loop.length }}:{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }} {% endfor %}",
  "{% for x in 'abc' %}{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }}{{ loop.cycle('o', 'e') }}|{% endfor %}",
  "{% for x in [] %}a{% else %}empty{% endfor %}",
  "{% for x in [1, 2, 3, 4] if x is even %}{{ loop.index }}{{ x }}{{ loop.last }}{% endfor %}",
  "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %} {% for k in d %}{{ k }}{% endfor %} {% for a, b in [[1, 2], (3, 4)] %}{{ a + b }}{% endfor %}",
  "{% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}{% endif %}{{ x }}{% if x == 3 %}{% break %}{% endif %}{% endfor %}",
  "{% for x in [1, 2] %}{% for y in 'ab' %}{{ x }}{{ y }}{{ loop.index }}{% endfor %}{{ loop.index }} {% endfor %}",
],
"Set": [
  "{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}",
  "{% for i in [1, 2] %}{% set y = (y or 0) + 1 %}{{ y }}{% endfor %}[{{ y }}]",
  "{% set a, b = 1, 2 %}{{ a }}{{ b }} {% set t = 1, 2 %}{{ t }}",
  "{% set ns = namespace(a=1, items=[]) %}{% for i in range(3) %}{% set ns.a = ns.a * 2 %}{% set ns.items = ns.items + [i] %}{% endfor %}{{ ns.a }} {{ ns.items }} {{ ns.nope }}|",
  "{% set x %}inner {{ 1 + 1 }}{% endset %}[{{ x }}] {% set y | upper %}abc{% endset %}{{ y }}",
],
"Macro": [
  "{% macro m(a, b=2) %}{{ a }}{{ b }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1) }}|{{ m(1, 3, 4, z=5) }}|{{ m(b=0, a=9) }}|{{ m() }}",
  "{% macro m() %}{{ g }}{% endmacro %}{% set g = 1 %}{{ m() }}",
  "{% macro wrap(x) %}[{{ caller() }}{{ x }}]{% endmacro %}{% call wrap(2) %}in{% endcall %}",
  "{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}",
  "{% macro m(a, b=a * 2) %}{{ b }}{% endmacro %}{{ m(4) }}",
],
"OtherBlocks": [
  "{% filter upper %}abc{{ 1 }}{% endfilter %}",
  "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]",
  "{% raw %}{{ x }}{% if %}{% endraw %}",
],
"TextFilters": [
  "[{{ s|trim }}] [{{ 'xxaxx'|trim('x') }}] [{{ ' \u0085a\ufeff '|trim }}] {{ s|upper }} {{ s|lower }} {{ 'hELLO wORLD'|capitalize }} {{ 'a-b c(d [e'|title }}",
  "{{ 'aaa'|replace('a', 'b') }} {{ 'aaa'|replace('a', 'b', 2) }} {{ 5|string + 'x' }} {{ '<a>'|e }} {{ '<a>'|safe }}",
  "{{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}|{{ 'a\n\nb'|indent('> ', blank=true) }}|{{ 'x y  z, w'|wordcount }}",
  "{{ 3.7|int }} {{ '42'|int }} {{ ' 0x1A'|int(0, 16) }} {{ '4.2'|int }} {{ 'x'|int }} {{ 'x'|int(-1) }} {{ '3'|float }} {{ 'x'|float }} {{ -3|abs }}",
  "{{ 2.5|round }} {{ 3.5|round }} {{ 3.14159|round(2) }} {{ -2.5|round }} {{ 2.675|round(2) }} {{ 5|round }} {{ 3.7|round(0, 'floor') }} {{ 3.2|round(0, 'ceil') }}",
  "{{ '%s-%d'|format('a', 3) }} {{ 'abc'|center(9) }}|",
],
"SequenceFilters": [
  "{{ [3, 1, 2]|sort }} {{ ['b', 'A', 'a']|sort }} {{ ['b', 'A', 'a']|sort(case_sensitive=true) }} {{ [3, 1, 2]|sort(reverse=true) }} {{ [none, none]|sort }}",
  "{{ messages|sort(attribute='role')|map(attribute='role')|join(',') }} {{ ['b', 'A', 'a']|unique|list }} {{ [1, 2]|reverse|list }} {{ 'abc'|reverse }}",
  "{{ messages|map(attribute='role')|list }} {{ messages|map(attribute='nope', default='?')|list }} {{ ['a', 'b']|map('upper')|join(',') }}",
  "{{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3]|reject('even')|list }} {{ [0, 1, '', 'a']|select|list }} {{ messages|selectattr('role', 'equalto', 'user')|list }} {{ messages|rejectattr('role', 'in', ['user', 'system'])|map(attribute='content')|first }}",
  "{{ [1, 2]|first }} {{ []|first }}|{{ 'abc'|last }} {{ d|items|list }} {{ d|list }} {{ 'ab'|list }} {{ [1, 2, 3]|length }} {{ d|count }}",
  "{{ [1, 2, 3]|join }} {{ [1, 2, 3]|join(', ') }} {{ messages|join('|', attribute='role') }} {{ {'b': 1, 'a': 2}|dictsort }} {{ [1, 2, 3]|sum }} {{ [1, 3, 2]|max }} {{ [1, 3, 2]|min }} {{ [1, 2, 3]|batch(2)|list }}",
  "{{ [1]|map('abs') is iterable }} {{ [1]|map('abs') is sequence }} {{ not []|select }} {% set g = [1, 2]|map('abs') %}{{ g|list }}{{ g|list }}",
],
"ToJson": [
  "{{ d|tojson }} {{ d|tojson(indent=2) }} {{ 'é\"\\n\\u0001'|tojson }} {{ 1.0|tojson }} {{ none|tojson }} {{ true|tojson }} {{ (1, 2)|tojson }}",
  "{{ [1.5, 2]|tojson(separators=(',', ':')) }} {{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }} {{ '😀'|tojson }} {{ '😀'|tojson(ensure_ascii=true) }} {{ {1: 'a'}|tojson }} {{ []|tojson(indent=2) }}",
  "{{ messages[0]|tojson(indent=4) }}",
],
"Tests": [
  "{{ none is none }} {{ 'a' is string }} {{ {} is mapping }} {{ 'a' is sequence }} {{ {} is sequence }} {{ 1 is number }} {{ true is number }} {{ true is integer }} {{ 1 is integer }} {{ 1.0 is float }} {{ 1 is float }}",
  "{{ true is boolean }} {{ 1 is boolean }} {{ true is true }} {{ 1 is true }} {{ false is false }} {{ nope is iterable }} {{ 1 is iterable }} {{ 'ab' is iterable }}",
  "{{ 3 is odd }} {{ 4 is even }} {{ 3.0 is odd }} {{ 9 is divisibleby 3 }} {{ 10 is divisibleby(4) }} {{ 1 is in [1] }} {{ 1 is eq 1 }} {{ 2 is gt 1 }} {{ 1 is lt 2 }} {{ 1 is ge 1 }} {{ 1 is le 0 }} {{ 1 is ne 2 }}",
  "{{ 'ab' is lower }} {{ 'AB' is upper }} {{ none is sameas none }} {{ range is callable }} {{ nope is callable }} {{ 1 is not string }} {{ 'upper' is filter }} {{ 'odd' is test }}",
],
"Methods": [
  "{{ 'a b  c'.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a b c'.split(none, 1) }} {{ ' 1 2 '.split(none, 0) }} {{ 'a.b.c'.rsplit('.', 1) }} {{ 'a\\nb\\r\\nc'.splitlines() }}",
  "[{{ ' x '.strip() }}] [{{ 'xxaxx'.strip('x') }}] [{{ '  x  '.lstrip() }}] [{{ '  x  '.rstrip() }}] [{{ '\\n\\nx\\n'.strip('\\n') }}]",
  "{{ 'ab'.startswith('a') }} {{ 'ab'.startswith(('x', 'a')) }} {{ 'ab'.endswith('b') }} {{ 'abcb'.find('b') }} {{ 'abcb'.rfind('b') }} {{ 'abcb'.count('b') }} {{ 'héllo'.find('l') }}",
  "{{ 'aaa'.replace('a', 'b', 2) }} {{ 'abc'.replace('', '-') }} {{ 'hello world'.title() }} {{ \"they're\".title() }} {{ 'HELLO'.capitalize() }} {{ 'Ab'.upper() }}{{ 'Ab'.lower() }}",
  "{{ '{}-{}'.format(1, 'a') }} {{ '{0}{0}{name}'.format('x', name='y') }} {{ ', '.join(['a', 'b']) }} {{ '%s=%d' % ('a', 3) }}",
  "{{ d.get('b') }} {{ d.get('z') }} {{ d.get('z', 3) }} {{ d.keys()|list }} {{ d.values()|list }} {{ d.items()|list }} {{ d.items() }} {{ [1, 2, 1].count(1) }} {{ [1, 2].index(2) }}",
],
"Globals": [
  "{{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }} {{ dict(a=1, b=2) }} {{ dict({'x': 1}, y=2) }} {{ namespace(a=1).a }}",
],
}
ERRORS = [
  ("UndefinedAttribute", "{{ nope.attr }}"),
  ("UndefinedCall", "{{ nope() }}"),
  ("UndefinedArithmetic", "{{ nope + 1 }}"),
  ("MissingAttributeChain", "{{ n.x.y }}"),
  ("StrPlusInt", "{{ 'a' + 1 }}"),
  ("OrderingMismatch", "{{ 1 < 'a' }}"),
  ("DivisionByZero", "{{ 1 / 0 }}"),
  ("UnsafeListAppend", "{{ [1].append(2) }}"),
  ("UnsafeDictPop", "{{ d.pop('a') }}"),
  ("NamespaceOnlyAttributeSet", "{% set d.x = 1 %}"),
  ("UnpackTooFew", "{% set a, b = [1] %}"),
  ("RangeTooBig", "{{ range(200000)|length }}"),
  ("NotIterable", "{% for x in 5 %}{% endfor %}"),
  ("NoLen", "{{ 5|length }}"),
  ("GeneratorNoLen", "{{ [1]|map('abs')|length }}"),
  ("TojsonUndefined", "{{ nope|tojson }}"),
  ("UnknownFilter", "{{ 1|nofilter }}"),
  ("UnknownTest", "{{ 1 is notest }}"),
  ("PositionalOnlyMethod", "{{ 'ab'.replace('a', 'b', count=1) }}"),
]

def cstr(s):
    out = '"'
    for ch in s:
        o = ord(ch)
        if ch == '\\': out += '\\\\'
        elif ch == '"': out += '\\"'
        elif ch == '\n': out += '\\n'
        elif ch == '\r': out += '\\r'
        elif ch == '\t': out += '\\t'
        elif o < 0x20 or o == 0x7f: out += '\\x%02x""' % o
        else: out += ch
    return out + '"'
def main():
    print('// Generated expectations: each string below is Python Jinja2 3.1.6\'s output for the template,')
    print('// rendered as transformers configures it (see tests/data/jinja_oracle.py).')
    for group, templates in GROUPS.items():
        print(f'TEST_F(JinjaTest, {group}) {{')
        for t in templates:
            exp = env.from_string(t).render(**CTX)
            print(f'  EXPECT_EQ(Render({cstr(t)}), {cstr(exp)});')
        print('}\n')
    print('TEST_F(JinjaTest, RuntimeErrorsCarryJinjaMessages) {')
    for name, t in ERRORS:
        try:
            env.from_string(t).render(**CTX); raise SystemExit('no error: ' + t)
        except Exception as e:
            msg = str(e)
        print(f'  EXPECT_THAT(Render({cstr(t)}), HasSubstr({cstr(msg)})) << "{name}";')
    print('}')


if __name__ == '__main__':
    main()
