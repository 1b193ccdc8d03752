#!/usr/bin/env python3
"""Writes schema.txt, the protobuf layout of the kinds minik8s serves, from
the Go type definitions of Kubernetes (k8s.io/api and k8s.io/apimachinery):
each struct field's protobuf number, JSON name, Go type, pointer-ness and
omitempty, which is what decoding a protobuf body into Kubernetes' JSON
needs.

Usage: generate_schema.py core_v1.go apps_v1.go discovery_v1.go meta_v1.go > schema.txt
(the types.go files of core/v1, apps/v1, discovery/v1 and meta/v1).

schema.txt lines:
  message <Name>
  <number> <jsonName> <type> [rep] [ptr] [omitempty]
where <type> is string, int32, int64, bool, bytes, double, time, microtime,
duration, intorstring, quantity, rawjson, map:<valueType> or a message name.
"""
import re
import sys

ROOTS = ["Namespace", "Node", "Pod", "Service", "Endpoints", "Event",
         "EndpointSlice", "Deployment", "ReplicaSet", "DeleteOptions"]

# Types with their own JSON form.
SPECIAL = {
    "metav1.Time": "time", "Time": "time",
    "metav1.MicroTime": "microtime", "MicroTime": "microtime",
    "metav1.Duration": "duration", "Duration": "duration",
    "intstr.IntOrString": "intorstring",
    "resource.Quantity": "quantity",
    "runtime.RawExtension": "rawjson",
    "metav1.FieldsV1": "rawjson", "FieldsV1": "rawjson",
    "types.UID": "string", "UID": "string",
}
SCALARS = {"string": "string", "int32": "int32", "int64": "int64", "bool": "bool",
           "int": "int64", "float64": "double", "byte": "bytes", "uint32": "int32"}

FIELD = re.compile(r'^\s+(\w+)\s+([^\s`]+)\s+`(.*)`')
EMBEDDED = re.compile(r'^\s+([\w\.\*]+)\s+`(.*)`')
STRUCT = re.compile(r'^type (\w+) struct \{')
ALIAS = re.compile(r'^type (\w+) ([\w\.\[\]\*]+)\s*$')


def parse(paths):
    structs, aliases = {}, {}
    for path in paths:
        current = None
        for line in open(path):
            m = STRUCT.match(line)
            if m:
                current = structs.setdefault(m.group(1), [])
                continue
            if current is not None and line.startswith("}"):
                current = None
                continue
            m = ALIAS.match(line)
            if m and current is None:
                aliases[m.group(1)] = m.group(2)
                continue
            if current is None:
                continue
            m = FIELD.match(line)
            if m:
                _, gotype, tags = m.groups()
            else:
                m = EMBEDDED.match(line)
                if not m:
                    continue
                gotype, tags = m.groups()
            j = re.search(r'json:"([^"]*)"', tags)
            p = re.search(r'protobuf:"(\w+),(\d+),(\w+),name=(\w+)', tags)
            if not j or not p or j.group(1).startswith(",inline") or j.group(1) == "-":
                continue
            json_name, *opts = j.group(1).split(",")
            current.append((int(p.group(2)), json_name, gotype, "omitempty" in opts))
    return structs, aliases


def resolve(gotype, structs, aliases, seen=0):
    """(type word, repeated) of a Go type."""
    if gotype.startswith("*"):
        return resolve(gotype[1:], structs, aliases)
    if gotype == "[]byte":
        return "bytes", False
    if gotype.startswith("[]"):
        inner, _ = resolve(gotype[2:], structs, aliases)
        return inner, True
    if gotype.startswith("map["):
        value = gotype[gotype.index("]") + 1:]
        inner, rep = resolve(value, structs, aliases)
        return "map:" + inner, False
    if gotype in SPECIAL:
        return SPECIAL[gotype], False
    if gotype in SCALARS:
        return SCALARS[gotype], False
    bare = gotype.split(".")[-1]
    if gotype in SPECIAL or bare in SPECIAL:
        return SPECIAL.get(gotype, SPECIAL.get(bare)), False
    if bare in structs:
        return bare, False
    if bare in aliases and seen < 5:
        return resolve(aliases[bare], structs, aliases, seen + 1)
    raise SystemExit(f"unknown Go type {gotype}")


def main():
    structs, aliases = parse(sys.argv[1:])
    out, todo, done = [], list(ROOTS), set()
    while todo:
        name = todo.pop(0)
        if name in done:
            continue
        done.add(name)
        out.append(f"message {name}")
        for number, json_name, gotype, omitempty in sorted(structs[name]):
            word, rep = resolve(gotype, structs, aliases)
            flags = (["rep"] if rep else []) + (["ptr"] if gotype.startswith("*") else []) \
                + (["omitempty"] if omitempty else [])
            out.append(" ".join([str(number), json_name, word] + flags))
            target = word[4:] if word.startswith("map:") else word
            if target in structs and target not in done:
                todo.append(target)
    print("\n".join(out))


main()
