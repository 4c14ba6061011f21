#!/usr/bin/python3
"""Renders Helm chart templates without helm, for the image test.

No helm binary is available on the build machine, so this is a small
interpreter of the Go text/template subset the chart uses (actions with
trim markers, comments, variables, if/else if/else, with, range, define,
include/template, pipelines, parenthesised calls) and of the Sprig/Helm
functions it calls (quote, toYaml, nindent, indent, default, printf, int,
list, index, hasKey, fail, trunc, trimSuffix, contains, replace, sha256sum,
or, and, not, eq, ne, empty, b64enc, randAlphaNum, lookup (which, as in
`helm template`, finds nothing), ...). It reads the chart's real Chart.yaml,
values.yaml (optionally overlaid with -f FILE) and templates, so what it
prints is what `helm template` would print for those files.

  render_chart.py CHART TEMPLATE            # print templates/TEMPLATE rendered
  render_chart.py CHART TEMPLATE --data KEY # print data.KEY of the rendered ConfigMap
  render_chart.py CHART --define NAME       # print {{ include "NAME" . }}

Options: -f VALUES (overlay), --release NAME (default "understudy").
An unknown function or construct is an error (exit 2), never a silent guess.
"""
import argparse
import hashlib
import json
import os
import re
import sys

import yaml


class TemplateError(Exception):
    pass


class FailCalled(Exception):
    pass


# --- lexing -------------------------------------------------------------------

ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)


def lex(text, name):
    """Splits a template into ('text', s) and ('action', s) tokens, applying trim markers."""
    tokens = []
    pos = 0
    for m in ACTION.finditer(text):
        chunk = text[pos:m.start()]
        if m.group(1):
            chunk = chunk.rstrip(" \t\r\n")
        tokens.append(["text", chunk])
        tokens.append(["action", m.group(2).strip(), bool(m.group(3))])
        pos = m.end()
    tokens.append(["text", text[pos:]])
    out = []
    trim_next = False
    for t in tokens:
        if t[0] == "text":
            s = t[1].lstrip(" \t\r\n") if trim_next else t[1]
            trim_next = False
            if s:
                out.append(("text", s))
        else:
            trim_next = t[2]
            if t[1].startswith("/*"):
                if not t[1].endswith("*/"):
                    raise TemplateError("%s: unterminated comment" % name)
                continue
            out.append(("action", t[1]))
    return out


WORD = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<decl>:=|=)
  | (?P<pipe>\|)
  | (?P<lp>\()
  | (?P<rp>\))
  | (?P<comma>,)
  | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
  | (?P<field>(?:\.[A-Za-z0-9_]+)+|\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
""", re.X)


def words(src):
    out, pos = [], 0
    while pos < len(src):
        m = WORD.match(src, pos)
        if not m:
            raise TemplateError("cannot parse %r" % src[pos:])
        pos = m.end()
        kind = m.lastgroup
        if kind == "ws":
            continue
        out.append((kind, m.group(kind)))
    return out


# --- parsing ------------------------------------------------------------------

def parse_pipeline(ws):
    """[decl vars] cmd | cmd ... → ('pipe', vars, is_decl, [cmd]); cmd = [operand]."""
    vars_, decl = [], None
    if len(ws) >= 2 and ws[0][0] == "var":
        i = 0
        names = []
        while i < len(ws) and ws[i][0] == "var":
            names.append(ws[i][1])
            if i + 1 < len(ws) and ws[i + 1][0] == "comma":
                i += 2
                continue
            i += 1
            break
        if i < len(ws) and ws[i][0] == "decl":
            vars_, decl, ws = names, ws[i][1], ws[i + 1:]
    cmds, cur, i = [], [], 0
    while i < len(ws):
        kind, val = ws[i]
        if kind == "pipe":
            cmds.append(cur)
            cur = []
        elif kind == "lp":
            depth, j = 1, i + 1
            while depth:
                if j >= len(ws):
                    raise TemplateError("unbalanced (")
                depth += {"lp": 1, "rp": -1}.get(ws[j][0], 0)
                j += 1
            sub = ("paren", parse_pipeline(ws[i + 1:j - 1]))
            if j < len(ws) and ws[j][0] == "field" and ws[j][1] != ".":
                sub = ("chain", sub, ws[j][1][1:].split("."))
                j += 1
            cur.append(sub)
            i = j
            continue
        elif kind == "rp":
            raise TemplateError("unbalanced )")
        else:
            cur.append((kind, val))
        i += 1
    cmds.append(cur)
    if any(not c for c in cmds):
        raise TemplateError("empty command in pipeline")
    return ("pipe", vars_, decl, cmds)


KEYWORDS = ("if", "else", "end", "range", "with", "define", "template", "block")


def parse(tokens, name):
    """Builds a tree; returns (nodes, defines)."""
    defines = {}
    pos = [0]

    def block(stop):
        nodes = []
        while pos[0] < len(tokens):
            kind, val = tokens[pos[0]]
            pos[0] += 1
            if kind == "text":
                nodes.append(("text", val))
                continue
            head = val.split(None, 1)[0] if val.split() else ""
            rest = val[len(head):].strip()
            if head in ("end", "else"):
                if head not in stop:
                    raise TemplateError("%s: unexpected {{%s}}" % (name, val))
                return nodes, head, rest
            if head in ("if", "with", "range"):
                pipe = parse_pipeline(words(rest))
                body, ended, erest = block(("end", "else"))
                alt = []
                if ended == "else":
                    if erest.startswith("if ") or erest.startswith("with "):
                        # {{else if x}} ≡ {{else}}{{if x}}...{{end}}, sharing this {{end}}.
                        pos[0] -= 1
                        tokens[pos[0]] = ("action", erest)
                        alt = else_chain()
                    else:
                        alt, _, _ = block(("end",))
                nodes.append((head, pipe, body, alt))
            elif head == "define":
                dname = json.loads(rest)
                body, _, _ = block(("end",))
                defines[dname] = body
            elif head in ("template", "block"):
                ws = words(rest)
                if ws[0][0] != "str":
                    raise TemplateError("template name must be a string")
                tname = json.loads(ws[0][1])
                arg = parse_pipeline(ws[1:]) if len(ws) > 1 else None
                if head == "block":
                    body, _, _ = block(("end",))
                    defines[tname] = body
                nodes.append(("template", tname, arg))
            else:
                nodes.append(("action", parse_pipeline(words(val))))
        if stop:
            raise TemplateError("%s: missing {{end}}" % name)
        return nodes, None, None

    def else_chain():
        # Parses the if/with that an {{else if ...}} starts (now the token at
        # pos), up to and including the {{end}} it shares with its parent.
        _, val = tokens[pos[0]]
        pos[0] += 1
        head, rest = val.split(None, 1)
        pipe = parse_pipeline(words(rest))
        body, ended, erest = block(("end", "else"))
        alt = []
        if ended == "else":
            if erest.startswith("if ") or erest.startswith("with "):
                pos[0] -= 1
                tokens[pos[0]] = ("action", erest)
                alt = else_chain()
            else:
                alt, _, _ = block(("end",))
        return [(head, pipe, body, alt)]

    tokens = list(tokens)
    nodes, _, _ = block(())
    return nodes, defines


# --- values -------------------------------------------------------------------

def truthy(v):
    if v is None or v is False:
        return False
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v != 0
    if isinstance(v, (str, list, dict, tuple)):
        return len(v) > 0
    return True


def gostr(v):
    if v is None:
        return ""
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, dict):
        return "map[" + " ".join("%s:%s" % (k, gostr(v[k])) for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(gostr(x) for x in v) + "]"
    return str(v)


def go_quote(s):
    return json.dumps(s, ensure_ascii=False)


def to_yaml(v):
    if v is None:
        return "null"
    out = yaml.safe_dump(v, default_flow_style=False, sort_keys=True, allow_unicode=True, width=1 << 30)
    if out.endswith("...\n"):
        out = out[:-4]
    return out.rstrip("\n")


def go_printf(fmt, *args):
    args = list(args)

    def conv(m):
        verb = m.group(2)
        if verb == "%":
            return "%"
        a = args.pop(0)
        if verb == "d":
            return ("%" + m.group(1) + "d") % int(a)
        if verb == "q":
            return go_quote(gostr(a))
        return ("%" + m.group(1) + "s") % gostr(a)
    return re.sub(r"%([-+ 0#]*\d*)([sdvq%])", conv, fmt)


def indent(n, s):
    pad = " " * int(n)
    return pad + s.replace("\n", "\n" + pad)


# --- evaluation ---------------------------------------------------------------

class Renderer:
    def __init__(self, defines, root):
        self.defines = defines
        self.root = root

    def funcs(self):
        return {
            "include": lambda name, data: self.include(name, data),
            "quote": lambda *a: " ".join(go_quote(gostr(x)) for x in a if x is not None),
            "squote": lambda *a: " ".join("'%s'" % gostr(x) for x in a if x is not None),
            "toYaml": to_yaml,
            "toJson": lambda v: json.dumps(v, separators=(",", ":")),
            "nindent": lambda n, s: "\n" + indent(n, gostr(s)),
            "indent": lambda n, s: indent(n, gostr(s)),
            "default": lambda d, *v: (v[0] if v and truthy(v[0]) else d),
            "printf": go_printf,
            "print": lambda *a: "".join(gostr(x) for x in a),
            "int": lambda v: int(float(v)) if v not in (None, "") else 0,
            "toString": gostr,
            "list": lambda *a: list(a),
            "index": self.index,
            "hasKey": lambda m, k: isinstance(m, dict) and k in m,
            "fail": self.fail,
            "required": self.required,
            "trunc": lambda n, s: s[:int(n)] if int(n) >= 0 else s[int(n):],
            "trimSuffix": lambda suf, s: s[:-len(suf)] if suf and s.endswith(suf) else s,
            "trimPrefix": lambda pre, s: s[len(pre):] if pre and s.startswith(pre) else s,
            "trim": lambda s: gostr(s).strip(),
            "contains": lambda sub, s: sub in gostr(s),
            "hasPrefix": lambda pre, s: gostr(s).startswith(pre),
            "replace": lambda old, new, s: gostr(s).replace(old, new),
            "upper": lambda s: gostr(s).upper(),
            "lower": lambda s: gostr(s).lower(),
            "sha256sum": lambda s: hashlib.sha256(gostr(s).encode()).hexdigest(),
            "b64enc": lambda s: __import__("base64").b64encode(gostr(s).encode()).decode(),
            "b64dec": lambda s: __import__("base64").b64decode(gostr(s)).decode(),
            # Like `helm template`: no cluster, so lookup finds nothing.
            "lookup": lambda api, kind, ns, name: {},
            "randAlphaNum": lambda n: "".join(
                __import__("secrets").choice(
                    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                for _ in range(int(n))),
            "empty": lambda v: not truthy(v),
            "len": lambda v: len(v),
            "eq": lambda a, *b: any(a == x for x in b),
            "ne": lambda a, b: a != b,
            "lt": lambda a, b: a < b,
            "le": lambda a, b: a <= b,
            "gt": lambda a, b: a > b,
            "ge": lambda a, b: a >= b,
            "not": lambda v: not truthy(v),
            "and": lambda *a: next((x for x in a if not truthy(x)), a[-1]),
            "or": lambda *a: next((x for x in a if truthy(x)), a[-1]),
            "ternary": lambda t, f, c: t if truthy(c) else f,
        }

    def fail(self, msg):
        raise FailCalled(gostr(msg))

    def required(self, msg, v):
        if v is None or v == "":
            raise FailCalled(gostr(msg))
        return v

    def index(self, coll, *keys):
        for k in keys:
            if coll is None:
                return None
            if isinstance(coll, dict):
                coll = coll.get(k)
            elif isinstance(coll, list):
                coll = coll[int(k)]
            else:
                raise TemplateError("index of %r" % (coll,))
        return coll

    def include(self, name, data):
        if name not in self.defines:
            raise TemplateError("no template %r" % name)
        return self.render(self.defines[name], data, [{"$": data}])

    # Field access: .A.B on dicts (missing → None, like Helm's values maps).
    @staticmethod
    def fields(v, names):
        for n in names:
            if v is None:
                return None
            if isinstance(v, dict):
                v = v.get(n)
            else:
                raise TemplateError("can't evaluate field %s in %r" % (n, type(v).__name__))
        return v

    def lookup_var(self, scopes, name):
        for s in reversed(scopes):
            if name in s:
                return s[name]
        raise TemplateError("undefined variable %s" % name)

    def operand(self, op, dot, scopes):
        kind = op[0]
        if kind == "str":
            return json.loads(op[1])
        if kind == "raw":
            return op[1][1:-1]
        if kind == "num":
            return float(op[1]) if "." in op[1] else int(op[1])
        if kind == "field":
            return dot if op[1] == "." else self.fields(dot, op[1][1:].split("."))
        if kind == "var":
            parts = op[1].split(".")
            return self.fields(self.lookup_var(scopes, parts[0]), parts[1:])
        if kind == "paren":
            return self.pipeline(op[1], dot, scopes)
        if kind == "chain":
            return self.fields(self.operand(op[1], dot, scopes), op[2])
        if kind == "ident":
            if op[1] in ("true", "false"):
                return op[1] == "true"
            if op[1] == "nil":
                return None
            return self.call(op[1], [], dot, scopes)
        raise TemplateError("unexpected %r" % (op,))

    def call(self, fname, args, dot, scopes):
        f = self.funcs().get(fname)
        if f is None:
            raise TemplateError("function %r is not supported by this renderer" % fname)
        return f(*args)

    def command(self, cmd, dot, scopes, piped):
        head = cmd[0]
        if head[0] == "ident" and head[1] not in ("true", "false", "nil"):
            args = [self.operand(o, dot, scopes) for o in cmd[1:]]
            if piped is not _NONE:
                args.append(piped)
            return self.call(head[1], args, dot, scopes)
        if head[0] in ("field", "var"):
            target = self.operand(head, dot, scopes)
            if callable(target):  # a method, e.g. .Files.Get "files/x"
                args = [self.operand(o, dot, scopes) for o in cmd[1:]]
                if piped is not _NONE:
                    args.append(piped)
                return target(*args)
        if len(cmd) > 1 or piped is not _NONE:
            raise TemplateError("can't give arguments to a non-function %r" % (head,))
        return self.operand(head, dot, scopes)

    def pipeline(self, pipe, dot, scopes):
        _, vars_, decl, cmds = pipe
        v = _NONE
        for cmd in cmds:
            v = self.command(cmd, dot, scopes, v)
        if vars_:
            if decl == ":=":
                scopes[-1][vars_[-1]] = v
            else:
                for s in reversed(scopes):
                    if vars_[-1] in s:
                        s[vars_[-1]] = v
                        break
        return v

    def render(self, nodes, dot, scopes):
        out = []
        for n in nodes:
            kind = n[0]
            if kind == "text":
                out.append(n[1])
            elif kind == "action":
                v = self.pipeline(n[1], dot, scopes)
                if not n[1][1]:  # a declaration prints nothing
                    out.append(gostr(v))
            elif kind == "template":
                arg = self.pipeline(n[2], dot, scopes) if n[2] else None
                out.append(self.include(n[1], arg))
            elif kind in ("if", "with"):
                scopes.append({})
                v = self.pipeline(n[1], dot, scopes)
                if truthy(v):
                    out.append(self.render(n[2], v if kind == "with" else dot, scopes))
                else:
                    out.append(self.render(n[3], dot, scopes))
                scopes.pop()
            elif kind == "range":
                _, vars_, decl, cmds = n[1]
                scopes.append({})
                coll = self.pipeline(("pipe", [], None, cmds), dot, scopes)
                items = (sorted(coll.items()) if isinstance(coll, dict)
                         else list(enumerate(coll or [])))
                if not items:
                    out.append(self.render(n[3], dot, scopes))
                for k, v in items:
                    scope = {}
                    if len(vars_) == 1:
                        scope[vars_[0]] = v
                    elif len(vars_) == 2:
                        scope[vars_[0]], scope[vars_[1]] = k, v
                    scopes.append(scope)
                    out.append(self.render(n[2], v, scopes))
                    scopes.pop()
                scopes.pop()
            else:
                raise TemplateError("unknown node %r" % (kind,))
        return "".join(out)


_NONE = object()


def merge(base, overlay):
    for k, v in (overlay or {}).items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


def load_chart(chart, values_files, release):
    with open(os.path.join(chart, "Chart.yaml")) as f:
        meta = yaml.safe_load(f)
    with open(os.path.join(chart, "values.yaml")) as f:
        values = yaml.safe_load(f) or {}
    for vf in values_files:
        with open(vf) as f:
            merge(values, yaml.safe_load(f))
    chart_obj = {
        "Name": meta["name"], "Version": meta["version"], "AppVersion": meta.get("appVersion"),
        "Description": meta.get("description"), "Type": meta.get("type", "application"),
    }
    tdir = os.path.join(chart, "templates")
    return {
        "Values": values,
        "Chart": chart_obj,
        "Release": {"Name": release, "Namespace": "default", "Service": "Helm",
                    "IsInstall": True, "IsUpgrade": False, "Revision": 1},
        "Capabilities": {"KubeVersion": {"Version": "v1.30.0"}},
        "Template": {"BasePath": meta["name"] + "/templates", "Name": ""},
        "Files": {"Get": lambda path: open(os.path.join(chart, path)).read()},
    }, tdir


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("chart")
    ap.add_argument("template", nargs="?")
    ap.add_argument("--data", help="print this key of the rendered ConfigMap's data")
    ap.add_argument("--define", help="print {{ include NAME . }}")
    ap.add_argument("-f", dest="values", action="append", default=[])
    ap.add_argument("--release", default="understudy")
    a = ap.parse_args()
    root, tdir = load_chart(a.chart, a.values, a.release)
    defines, trees = {}, {}
    for fn in sorted(os.listdir(tdir)):
        if not (fn.endswith(".yaml") or fn.endswith(".tpl") or fn.endswith(".txt")):
            continue
        with open(os.path.join(tdir, fn)) as f:
            nodes, d = parse(lex(f.read(), fn), fn)
        defines.update(d)
        trees[fn] = nodes
        defines[root["Template"]["BasePath"] + "/" + fn] = nodes  # include "<chart>/templates/x.yaml"
    r = Renderer(defines, root)
    if a.define:
        sys.stdout.write(r.include(a.define, root) + "\n")
        return
    if not a.template:
        ap.error("give a TEMPLATE or --define")
    root["Template"]["Name"] = root["Template"]["BasePath"] + "/" + a.template
    text = r.render(trees[a.template], root, [{"$": root}])
    if a.data:
        doc = yaml.safe_load(text)
        sys.stdout.write(doc["data"][a.data])
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    try:
        main()
    except FailCalled as e:
        print("render_chart: fail: %s" % e, file=sys.stderr)
        sys.exit(1)
    except (TemplateError, KeyError) as e:
        print("render_chart: %s" % e, file=sys.stderr)
        sys.exit(2)
