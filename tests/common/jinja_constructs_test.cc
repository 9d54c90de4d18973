// One test per template construct: every expected string is what Python
// Jinja2 3.1.6 renders for the template, configured as transformers configures
// chat templates (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
// loopcontrols). The expectations were produced by jinja_constructs_test_gen.py
// (run it with Python Jinja2 installed to regenerate or extend them).
#include <nlohmann/json.hpp>
#include <string>

#include "common/jinja/chat_template.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::jinja {
namespace {

using ::testing::HasSubstr;

class JinjaTest : public ::testing::Test {
 protected:
  // The rendered text, or "ERROR: <status>" when parsing or rendering fails.
  static std::string Render(const std::string& source) {
    static const nlohmann::ordered_json kContext = nlohmann::ordered_json::parse(R"({
      "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "hi"},
                   {"role": "assistant", "content": "yo"}],
      "d": {"b": 1, "a": [1, 2]}, "n": null, "t": true, "s": " Hello World ", "i": 7, "f": 2.5})");
    auto tmpl = ChatTemplate::Parse(source);
    if (!tmpl.ok()) return "ERROR: " + tmpl.status().ToString();
    auto out = tmpl->Render(kContext);
    if (!out.ok()) return "ERROR: " + out.status().ToString();
    return *out;
  }
};

TEST_F(JinjaTest, WhitespaceControl) {
  EXPECT_EQ(Render("a\n  {% if true %}\n  b\n  {% endif %}\nc\n"), "a\n  b\nc");
  EXPECT_EQ(Render("  {{ 1 }}\n  {# c #}\nx"), "  1\nx");
  EXPECT_EQ(Render("{%- if true -%}   a   {%- endif -%}  b"), "ab");
  EXPECT_EQ(Render("x {%+ if true %} y {% endif %}\n z"), "x  y  z");
  EXPECT_EQ(Render("  {%- if true %}a{% endif +%}\n  b"), "a\n  b");
  EXPECT_EQ(Render("a {# c -#}\n  b"), "a b");
  EXPECT_EQ(Render("line1\r\nline2\r\n"), "line1\nline2");
  EXPECT_EQ(Render("{% for x in [1, 2] %}\n{{ x }}\n{% endfor %}\n"), "1\n2\n");
  EXPECT_EQ(Render("  {% raw %}\n {{ x }}\n  {% endraw %}\nz"), "\n {{ x }}\nz");
  EXPECT_EQ(Render("{{- '  a  ' -}}   {{ 'b' }}"), "  a  b");
}

TEST_F(JinjaTest, Literals) {
  EXPECT_EQ(Render("{{ 'it''s' }}|{{ \"it's\" }}|{{ ['it\\'s', 'a\"b', 'a\"b\\'c'] }}"),
            "its|it's|[\"it's\", 'a\"b', 'a\"b\\'c']");
  EXPECT_EQ(Render("{{ '\\x41\\u00e9\\n\\t\\q\\\\' }}"), "Aé\n\t\\q\\");
  EXPECT_EQ(Render("{{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1.5e3 }} {{ 2.0 }} {{ 1e16 }} "
                   "{{ 0.0001 }} {{ 0.00001 }}"),
            "1000 31 15 5 1500.0 2.0 1e+16 0.0001 1e-05");
  EXPECT_EQ(Render("{{ true }} {{ True }} {{ none }} {{ None }} {{ false }}"),
            "True True None None False");
  EXPECT_EQ(Render("{{ [1, 'a', none, 1.5, {'k': [true]}] }} {{ (1,) }} {{ (1, 2) }} {{ () }}"),
            "[1, 'a', None, 1.5, {'k': [True]}] (1,) (1, 2) ()");
  EXPECT_EQ(Render("{{ {'a': {'b': 1}} }} {{ {} }}"), "{'a': {'b': 1}} {}");
  EXPECT_EQ(Render("{{ 'a' 'b' }}"), "ab");
}

TEST_F(JinjaTest, Arithmetic) {
  EXPECT_EQ(Render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % -3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 6 / 2 }} "
                   "{{ 2 ** 10 }} {{ 2 ** -1 }} {{ 2 ** 3 ** 2 }}"),
            "3 -4 -2 2 3.5 3.0 1024 0.5 64");
  EXPECT_EQ(Render("{{ 1 + true }} {{ 1.5 + 1 }} {{ 0.1 + 0.2 }} {{ 1 / 3 }} {{ 10 % 3.5 }} {{ "
                   "-7.5 // 2 }} {{ -0.0 }}"),
            "2 2.5 0.30000000000000004 0.3333333333333333 3.0 -4.0 -0.0");
  EXPECT_EQ(Render("{{ 'ab' * 3 }} {{ [1] * 2 }} {{ 3 * 'x' }} {{ [1, 2] + [3] }} {{ (1,) + (2,) "
                   "}} {{ 'a' + 'b' }}"),
            "ababab [1, 1] xxx [1, 2, 3] (1, 2) ab");
  EXPECT_EQ(Render("{{ -i }} {{ +i }} {{ - -i }} {{ -f|abs }}"), "-7 7 7 2.5");
  EXPECT_EQ(Render("{{ 1 ~ 2 ~ none ~ true ~ undefined_name }}"), "12NoneTrue");
}

TEST_F(JinjaTest, Comparisons) {
  EXPECT_EQ(Render("{{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' == 1 }} {{ none == none }} {{ [1, 2] == "
                   "[1, 2] }} {{ {'a': 1} == {'a': 1} }}"),
            "True True False True True True");
  EXPECT_EQ(Render("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'abc' < 'abd' }} {{ [1, 2] < [1, 3] }} {{ 2 "
                   ">= 2 }} {{ 1 != 2 }}"),
            "True False True True True True");
  EXPECT_EQ(Render("{{ 'b' in 'abc' }} {{ 1 in [1, 2] }} {{ 'a' in {'a': 1} }} {{ 3 not in [1] }} "
                   "{{ 'x' in undefined_name }}"),
            "True True True True False");
}

TEST_F(JinjaTest, Logic) {
  EXPECT_EQ(Render("{{ 1 and 2 }}|{{ 0 and 2 }}|{{ 0 or '' }}|{{ none or 0 }}|{{ 'a' or 'b' }}|{{ "
                   "not 1 }}|{{ not none }}"),
            "2|0||0|a|False|True");
  EXPECT_EQ(Render("{{ 'a' if 1 else 'b' }}|{{ 'a' if 0 else 'b' }}|{{ 'a' if 0 }}|{{ (1 if false) "
                   "is defined }}"),
            "a|b||False");
  EXPECT_EQ(
      Render("{{ not true and false }} {{ not (true and false) }} {{ 1 in [1] and 2 not in [1] }}"),
      "False True True");
}

TEST_F(JinjaTest, Access) {
  EXPECT_EQ(Render("{{ messages[0].content }} {{ messages[1]['role'] }} {{ messages[-1].role }} {{ "
                   "messages|length }}"),
            "S user assistant 3");
  EXPECT_EQ(Render("{{ d.b }} {{ d['a'][1] }} {{ d.a.0 }} {{ d.missing }}|{{ d['missing'] }}|{{ "
                   "s.missing }}|{{ n.x }}"),
            "1 2 1 |||");
  EXPECT_EQ(Render("{{ d.items is defined }} {{ d['items'] is defined }} {{ d.get('b') }} {{ [1, "
                   "2][5] }}|{{ 'abc'[1] }} {{ 'abc'[-1] }} {{ 'abc'[9] }}|"),
            "True True 1 |b c |");
  EXPECT_EQ(Render("{{ 'Hello'[1:-1] }} {{ 'Hello'[-3:] }} {{ [1, 2, 3, 4, 5][::2] }} {{ [1, 2, 3, "
                   "4, 5][1::2] }} {{ [1, 2, 3][5:] }} {{ 'abc'[::-1] }} {{ 'abc'[::-2] }} {{ "
                   "messages[::-1]|map(attribute='role')|join(',') }}"),
            "ell llo [1, 3, 5] [2, 4] [] cba ca assistant,user,system");
  EXPECT_EQ(
      Render("{{ 'héllo'|length }} {{ 'héllo'[1:3] }} {{ '日本語'[1] }} {{ '日本語'|reverse }}"),
      "5 él 本 語本日");
}

TEST_F(JinjaTest, Undefined) {
  EXPECT_EQ(Render("[{{ nope }}] {{ nope is defined }} {{ nope is undefined }} {{ not nope }} {{ "
                   "nope|default('d') }} {{ nope|length }} {{ nope|list }}"),
            "[] False True True d 0 []");
  EXPECT_EQ(Render("{% for x in nope %}a{% else %}empty{% endfor %} {{ 'a' in nope }} {{ "
                   "nope|string }}|{{ nope|upper }}|"),
            "empty False ||");
  EXPECT_EQ(Render("{{ ''|default('e', true) }} {{ none|default('f') }} {{ 0|d('z', true) }}"),
            "e None z");
}

TEST_F(JinjaTest, If) {
  EXPECT_EQ(Render("{% if i > 5 %}big{% elif i > 2 %}mid{% else %}small{% endif %}|{% if not t "
                   "%}x{% else %}y{% endif %}|{% if n %}a{% elif s %}b{% endif %}"),
            "big|y|b");
  EXPECT_EQ(Render("{% if true %}{% set z = 3 %}{% endif %}{{ z }}"), "3");
}

TEST_F(JinjaTest, For) {
  EXPECT_EQ(
      Render("{% for m in messages %}{{ loop.index }}/{{ loop.length }}:{{ loop.index0 }}{{ "
             "loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }} {% endfor %}"),
      "1/3:032TrueFalse 2/3:121FalseFalse 3/3:210FalseTrue ");
  EXPECT_EQ(Render("{% for x in 'abc' %}{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }}{{ "
                   "loop.cycle('o', 'e') }}|{% endfor %}"),
            "<a>bo|a<b>ce|b<c>o|");
  EXPECT_EQ(Render("{% for x in [] %}a{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(Render("{% for x in [1, 2, 3, 4] if x is even %}{{ loop.index }}{{ x }}{{ loop.last "
                   "}}{% endfor %}"),
            "12False24True");
  EXPECT_EQ(Render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %} {% for k in d %}{{ k "
                   "}}{% endfor %} {% for a, b in [[1, 2], (3, 4)] %}{{ a + b }}{% endfor %}"),
            "b=1;a=[1, 2]; ba 37");
  EXPECT_EQ(Render("{% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}{% endif %}{{ x }}{% "
                   "if x == 3 %}{% break %}{% endif %}{% endfor %}"),
            "13");
  EXPECT_EQ(Render("{% for x in [1, 2] %}{% for y in 'ab' %}{{ x }}{{ y }}{{ loop.index }}{% "
                   "endfor %}{{ loop.index }} {% endfor %}"),
            "1a11b21 2a12b22 ");
}

TEST_F(JinjaTest, Set) {
  EXPECT_EQ(Render("{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = x + 1 %}{{ x }}{% endfor "
                   "%}{{ x }}"),
            "12121");
  EXPECT_EQ(Render("{% for i in [1, 2] %}{% set y = (y or 0) + 1 %}{{ y }}{% endfor %}[{{ y }}]"),
            "11[]");
  EXPECT_EQ(Render("{% set a, b = 1, 2 %}{{ a }}{{ b }} {% set t = 1, 2 %}{{ t }}"), "12 (1, 2)");
  EXPECT_EQ(Render("{% set ns = namespace(a=1, items=[]) %}{% for i in range(3) %}{% set ns.a = "
                   "ns.a * 2 %}{% set ns.items = ns.items + [i] %}{% endfor %}{{ ns.a }} {{ "
                   "ns.items }} {{ ns.nope }}|"),
            "8 [0, 1, 2] |");
  EXPECT_EQ(Render("{% set x %}inner {{ 1 + 1 }}{% endset %}[{{ x }}] {% set y | upper %}abc{% "
                   "endset %}{{ y }}"),
            "[inner 2] ABC");
}

TEST_F(JinjaTest, Macro) {
  EXPECT_EQ(Render("{% macro m(a, b=2) %}{{ a }}{{ b }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ "
                   "m(1) }}|{{ m(1, 3, 4, z=5) }}|{{ m(b=0, a=9) }}|{{ m() }}"),
            "12(){}|13(4,){'z': 5}|90(){}|2(){}");
  EXPECT_EQ(Render("{% macro m() %}{{ g }}{% endmacro %}{% set g = 1 %}{{ m() }}"), "1");
  EXPECT_EQ(Render("{% macro wrap(x) %}[{{ caller() }}{{ x }}]{% endmacro %}{% call wrap(2) %}in{% "
                   "endcall %}"),
            "[in2]");
  EXPECT_EQ(
      Render(
          "{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}"),
      "321");
  EXPECT_EQ(Render("{% macro m(a, b=a * 2) %}{{ b }}{% endmacro %}{{ m(4) }}"), "8");
}

TEST_F(JinjaTest, OtherBlocks) {
  EXPECT_EQ(Render("{% filter upper %}abc{{ 1 }}{% endfilter %}"), "ABC1");
  EXPECT_EQ(Render("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]"), "3[]");
  EXPECT_EQ(Render("{% raw %}{{ x }}{% if %}{% endraw %}"), "{{ x }}{% if %}");
}

TEST_F(JinjaTest, TextFilters) {
  EXPECT_EQ(Render("[{{ s|trim }}] [{{ 'xxaxx'|trim('x') }}] [{{ ' a﻿ '|trim }}] {{ s|upper }} "
                   "{{ s|lower }} {{ 'hELLO wORLD'|capitalize }} {{ 'a-b c(d [e'|title }}"),
            "[Hello World] [a] [a﻿]  HELLO WORLD   hello world  Hello world A-B C(D [E");
  EXPECT_EQ(Render("{{ 'aaa'|replace('a', 'b') }} {{ 'aaa'|replace('a', 'b', 2) }} {{ 5|string + "
                   "'x' }} {{ '<a>'|e }} {{ '<a>'|safe }}"),
            "bbb bba 5x &lt;a&gt; <a>");
  EXPECT_EQ(Render("{{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}|{{ 'a\n\nb'|indent('> "
                   "', blank=true) }}|{{ 'x y  z, w'|wordcount }}"),
            "a\n  b\n\n  c|  a\n  b|a\n> \n> b|4");
  EXPECT_EQ(Render("{{ 3.7|int }} {{ '42'|int }} {{ ' 0x1A'|int(0, 16) }} {{ '4.2'|int }} {{ "
                   "'x'|int }} {{ 'x'|int(-1) }} {{ '3'|float }} {{ 'x'|float }} {{ -3|abs }}"),
            "3 42 26 4 0 -1 3.0 0.0 3");
  EXPECT_EQ(
      Render(
          "{{ 2.5|round }} {{ 3.5|round }} {{ 3.14159|round(2) }} {{ -2.5|round }} {{ "
          "2.675|round(2) }} {{ 5|round }} {{ 3.7|round(0, 'floor') }} {{ 3.2|round(0, 'ceil') }}"),
      "2.0 4.0 3.14 -2.0 2.67 5 3.0 4.0");
  EXPECT_EQ(Render("{{ '%s-%d'|format('a', 3) }} {{ 'abc'|center(9) }}|"), "a-3    abc   |");
}

TEST_F(JinjaTest, SequenceFilters) {
  EXPECT_EQ(Render("{{ [3, 1, 2]|sort }} {{ ['b', 'A', 'a']|sort }} {{ ['b', 'A', "
                   "'a']|sort(case_sensitive=true) }} {{ [3, 1, 2]|sort(reverse=true) }} {{ [none, "
                   "none]|sort }}"),
            "[1, 2, 3] ['A', 'a', 'b'] ['A', 'a', 'b'] [3, 2, 1] [None, None]");
  EXPECT_EQ(Render("{{ messages|sort(attribute='role')|map(attribute='role')|join(',') }} {{ ['b', "
                   "'A', 'a']|unique|list }} {{ [1, 2]|reverse|list }} {{ 'abc'|reverse }}"),
            "assistant,system,user ['b', 'A'] [2, 1] cba");
  EXPECT_EQ(Render("{{ messages|map(attribute='role')|list }} {{ messages|map(attribute='nope', "
                   "default='?')|list }} {{ ['a', 'b']|map('upper')|join(',') }}"),
            "['system', 'user', 'assistant'] ['?', '?', '?'] A,B");
  EXPECT_EQ(Render("{{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3]|reject('even')|list }} {{ "
                   "[0, 1, '', 'a']|select|list }} {{ messages|selectattr('role', 'equalto', "
                   "'user')|list }} {{ messages|rejectattr('role', 'in', ['user', "
                   "'system'])|map(attribute='content')|first }}"),
            "[1, 3] [1, 3] [1, 'a'] [{'role': 'user', 'content': 'hi'}] yo");
  EXPECT_EQ(Render("{{ [1, 2]|first }} {{ []|first }}|{{ 'abc'|last }} {{ d|items|list }} {{ "
                   "d|list }} {{ 'ab'|list }} {{ [1, 2, 3]|length }} {{ d|count }}"),
            "1 |c [('b', 1), ('a', [1, 2])] ['b', 'a'] ['a', 'b'] 3 2");
  EXPECT_EQ(Render("{{ [1, 2, 3]|join }} {{ [1, 2, 3]|join(', ') }} {{ messages|join('|', "
                   "attribute='role') }} {{ {'b': 1, 'a': 2}|dictsort }} {{ [1, 2, 3]|sum }} {{ "
                   "[1, 3, 2]|max }} {{ [1, 3, 2]|min }} {{ [1, 2, 3]|batch(2)|list }}"),
            "123 1, 2, 3 system|user|assistant [('a', 2), ('b', 1)] 6 3 1 [[1, 2], [3]]");
  EXPECT_EQ(Render("{{ [1]|map('abs') is iterable }} {{ [1]|map('abs') is sequence }} {{ not "
                   "[]|select }} {% set g = [1, 2]|map('abs') %}{{ g|list }}{{ g|list }}"),
            "True False False [1, 2][]");
}

TEST_F(JinjaTest, ToJson) {
  EXPECT_EQ(Render("{{ d|tojson }} {{ d|tojson(indent=2) }} {{ 'é\"\\n\\u0001'|tojson }} {{ "
                   "1.0|tojson }} {{ none|tojson }} {{ true|tojson }} {{ (1, 2)|tojson }}"),
            "{\"b\": 1, \"a\": [1, 2]} {\n  \"b\": 1,\n  \"a\": [\n    1,\n    2\n  ]\n} "
            "\"é\\\"\\n\\u0001\" 1.0 null true [1, 2]");
  EXPECT_EQ(Render("{{ [1.5, 2]|tojson(separators=(',', ':')) }} {{ {'b': 1, 'a': "
                   "2}|tojson(sort_keys=true) }} {{ '😀'|tojson }} {{ '😀'|tojson(ensure_ascii=true) "
                   "}} {{ {1: 'a'}|tojson }} {{ []|tojson(indent=2) }}"),
            "[1.5,2] {\"a\": 2, \"b\": 1} \"😀\" \"\\ud83d\\ude00\" {\"1\": \"a\"} []");
  EXPECT_EQ(Render("{{ messages[0]|tojson(indent=4) }}"),
            "{\n    \"role\": \"system\",\n    \"content\": \"S\"\n}");
}

TEST_F(JinjaTest, Tests) {
  EXPECT_EQ(Render("{{ none is none }} {{ 'a' is string }} {{ {} is mapping }} {{ 'a' is sequence "
                   "}} {{ {} is sequence }} {{ 1 is number }} {{ true is number }} {{ true is "
                   "integer }} {{ 1 is integer }} {{ 1.0 is float }} {{ 1 is float }}"),
            "True True True True True True True False True True False");
  EXPECT_EQ(
      Render("{{ true is boolean }} {{ 1 is boolean }} {{ true is true }} {{ 1 is true }} {{ false "
             "is false }} {{ nope is iterable }} {{ 1 is iterable }} {{ 'ab' is iterable }}"),
      "True False True False True True False True");
  EXPECT_EQ(Render("{{ 3 is odd }} {{ 4 is even }} {{ 3.0 is odd }} {{ 9 is divisibleby 3 }} {{ 10 "
                   "is divisibleby(4) }} {{ 1 is in [1] }} {{ 1 is eq 1 }} {{ 2 is gt 1 }} {{ 1 is "
                   "lt 2 }} {{ 1 is ge 1 }} {{ 1 is le 0 }} {{ 1 is ne 2 }}"),
            "True True True True False True True True True True False True");
  EXPECT_EQ(Render("{{ 'ab' is lower }} {{ 'AB' is upper }} {{ none is sameas none }} {{ range is "
                   "callable }} {{ nope is callable }} {{ 1 is not string }} {{ 'upper' is filter "
                   "}} {{ 'odd' is test }}"),
            "True True True True True True True True");
}

TEST_F(JinjaTest, Methods) {
  EXPECT_EQ(
      Render(
          "{{ 'a b  c'.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a b c'.split(none, 1) }} {{ ' 1 2 "
          "'.split(none, 0) }} {{ 'a.b.c'.rsplit('.', 1) }} {{ 'a\\nb\\r\\nc'.splitlines() }}"),
      "['a', 'b', 'c'] ['a', 'b', '', 'c'] ['a', 'b c'] ['1 2 '] ['a.b', 'c'] ['a', 'b', 'c']");
  EXPECT_EQ(Render("[{{ ' x '.strip() }}] [{{ 'xxaxx'.strip('x') }}] [{{ '  x  '.lstrip() }}] [{{ "
                   "'  x  '.rstrip() }}] [{{ '\\n\\nx\\n'.strip('\\n') }}]"),
            "[x] [a] [x  ] [  x] [x]");
  EXPECT_EQ(Render("{{ 'ab'.startswith('a') }} {{ 'ab'.startswith(('x', 'a')) }} {{ "
                   "'ab'.endswith('b') }} {{ 'abcb'.find('b') }} {{ 'abcb'.rfind('b') }} {{ "
                   "'abcb'.count('b') }} {{ 'héllo'.find('l') }}"),
            "True True True 1 3 2 2");
  EXPECT_EQ(Render("{{ 'aaa'.replace('a', 'b', 2) }} {{ 'abc'.replace('', '-') }} {{ 'hello "
                   "world'.title() }} {{ \"they're\".title() }} {{ 'HELLO'.capitalize() }} {{ "
                   "'Ab'.upper() }}{{ 'Ab'.lower() }}"),
            "bba -a-b-c- Hello World They'Re Hello ABab");
  EXPECT_EQ(Render("{{ '{}-{}'.format(1, 'a') }} {{ '{0}{0}{name}'.format('x', name='y') }} {{ ', "
                   "'.join(['a', 'b']) }} {{ '%s=%d' % ('a', 3) }}"),
            "1-a xxy a, b a=3");
  EXPECT_EQ(Render("{{ d.get('b') }} {{ d.get('z') }} {{ d.get('z', 3) }} {{ d.keys()|list }} {{ "
                   "d.values()|list }} {{ d.items()|list }} {{ d.items() }} {{ [1, 2, 1].count(1) "
                   "}} {{ [1, 2].index(2) }}"),
            "1 None 3 ['b', 'a'] [1, [1, 2]] [('b', 1), ('a', [1, 2])] dict_items([('b', 1), ('a', "
            "[1, 2])]) 2 1");
}

TEST_F(JinjaTest, Globals) {
  EXPECT_EQ(Render("{{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }} {{ "
                   "dict(a=1, b=2) }} {{ dict({'x': 1}, y=2) }} {{ namespace(a=1).a }}"),
            "[0, 1, 2] [1, 4, 7] [5, 3, 1] {'a': 1, 'b': 2} {'x': 1, 'y': 2} 1");
}

TEST_F(JinjaTest, RuntimeErrorsCarryJinjaMessages) {
  EXPECT_THAT(Render("{{ nope.attr }}"), HasSubstr("'nope' is undefined")) << "UndefinedAttribute";
  EXPECT_THAT(Render("{{ nope() }}"), HasSubstr("'nope' is undefined")) << "UndefinedCall";
  EXPECT_THAT(Render("{{ nope + 1 }}"), HasSubstr("'nope' is undefined")) << "UndefinedArithmetic";
  EXPECT_THAT(Render("{{ n.x.y }}"), HasSubstr("'None' has no attribute 'x'"))
      << "MissingAttributeChain";
  EXPECT_THAT(Render("{{ 'a' + 1 }}"), HasSubstr("can only concatenate str (not \"int\") to str"))
      << "StrPlusInt";
  EXPECT_THAT(Render("{{ 1 < 'a' }}"),
              HasSubstr("'<' not supported between instances of 'int' and 'str'"))
      << "OrderingMismatch";
  EXPECT_THAT(Render("{{ 1 / 0 }}"), HasSubstr("division by zero")) << "DivisionByZero";
  EXPECT_THAT(Render("{{ [1].append(2) }}"),
              HasSubstr("access to attribute 'append' of 'list' object is unsafe."))
      << "UnsafeListAppend";
  EXPECT_THAT(Render("{{ d.pop('a') }}"),
              HasSubstr("access to attribute 'pop' of 'dict' object is unsafe."))
      << "UnsafeDictPop";
  EXPECT_THAT(Render("{% set d.x = 1 %}"),
              HasSubstr("cannot assign attribute on non-namespace object"))
      << "NamespaceOnlyAttributeSet";
  EXPECT_THAT(Render("{% set a, b = [1] %}"),
              HasSubstr("not enough values to unpack (expected 2, got 1)"))
      << "UnpackTooFew";
  EXPECT_THAT(Render("{{ range(200000)|length }}"),
              HasSubstr("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000)."))
      << "RangeTooBig";
  EXPECT_THAT(Render("{% for x in 5 %}{% endfor %}"), HasSubstr("'int' object is not iterable"))
      << "NotIterable";
  EXPECT_THAT(Render("{{ 5|length }}"), HasSubstr("object of type 'int' has no len()")) << "NoLen";
  EXPECT_THAT(Render("{{ [1]|map('abs')|length }}"),
              HasSubstr("object of type 'generator' has no len()"))
      << "GeneratorNoLen";
  EXPECT_THAT(Render("{{ nope|tojson }}"),
              HasSubstr("Object of type Undefined is not JSON serializable"))
      << "TojsonUndefined";
  EXPECT_THAT(Render("{{ 1|nofilter }}"), HasSubstr("No filter named 'nofilter'."))
      << "UnknownFilter";
  EXPECT_THAT(Render("{{ 1 is notest }}"), HasSubstr("No test named 'notest'.")) << "UnknownTest";
  EXPECT_THAT(Render("{{ 'ab'.replace('a', 'b', count=1) }}"),
              HasSubstr("str.replace() takes no keyword arguments"))
      << "PositionalOnlyMethod";
}

}  // namespace
}  // namespace tessera::jinja
