#!/usr/bin/env python3
"""Turns a CUDA source into C++ that g++ accepts, for the emulated CUDA backend.

    rewrite.py INPUT OUTPUT

Only what g++ cannot parse changes; the kernels' code stays as written:
  - `kernel<<<grid, block, smem, stream>>>(args)` becomes
    `::cuemu::launch(__FILE__, __LINE__, ::cuemu::LaunchConfig(grid, block, smem, stream),
    kernel, args)`;
  - `extern __shared__ T name[];` becomes a pointer to the block's dynamic shared memory;
  - `__shared__ T name[dims];` becomes a reference to per-block storage;
  - every `__global__` function gets CUEMU_KERNEL_PROLOGUE(max_threads, min_blocks) as its first
    statement (the __launch_bounds__ values, 0 when absent), which the launch checks.
Comments, strings and character literals are left alone. Newlines are kept and a `#line`
directive names the original file, so compiler messages and __FILE__/__LINE__ point at it.
The output is written only when its content changes (no needless recompilation).
"""
import os
import re
import sys


def code_mask(src):
    """True for each character that is code (not in a comment, string or char literal)."""
    mask = [True] * len(src)
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif c == 'R' and src.startswith('R"', i) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == '_')):
            m = re.match(r'R"([^(\s]*)\(', src[i:])
            if not m:
                i += 1
                continue
            end = src.find(")" + m.group(1) + '"', i)
            j = n if end < 0 else end + len(m.group(1)) + 2
        elif c in "\"'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            j += 1
        else:
            i += 1
            continue
        for k in range(i, min(j, n)):
            mask[k] = False
        i = j
    return mask


def find_code(src, mask, pattern, start=0):
    for m in re.finditer(pattern, src[start:]):
        if mask[start + m.start()]:
            return start + m.start(), start + m.end()
    return None


def match_forward(src, i, open_ch, close_ch):
    """Index just past the bracket that closes the one at src[i]."""
    depth = 0
    for j in range(i, len(src)):
        if src[j] == open_ch:
            depth += 1
        elif src[j] == close_ch:
            depth -= 1
            if depth == 0:
                return j + 1
    raise SyntaxError("unbalanced %s at offset %d" % (open_ch, i))


def kernel_expression_start(src, end):
    """Start of the kernel expression (name, ::, template arguments) that ends at `end`."""
    i = end
    while i > 0 and src[i - 1].isspace():
        i -= 1
    while i > 0:
        c = src[i - 1]
        if c == ">":  # template arguments: walk back to the matching '<'
            depth = 0
            j = i - 1
            while j >= 0:
                if src[j] == ">":
                    depth += 1
                elif src[j] == "<":
                    depth -= 1
                    if depth == 0:
                        break
                j -= 1
            i = j
        elif c.isalnum() or c in "_:.":
            i -= 1
        elif c.isspace():
            k = i
            while k > 0 and src[k - 1].isspace():
                k -= 1
            if k > 0 and (src[k - 1] in ":<" or src[k - 1] == ">"):
                i = k
            else:
                break
        else:
            break
    return i


def split_top_level(text):
    """Splits on commas outside brackets."""
    parts, depth, cur = [], 0, ""
    for c in text:
        if c in "([{<":
            depth += 1
        elif c in ")]}>":
            depth -= 1
        if c == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    parts.append(cur)
    return parts


def rewrite_launches(src):
    while True:
        mask = code_mask(src)
        hit = find_code(src, mask, r"<<<")
        if not hit:
            return src
        lt, after_lt = hit
        gt = find_code(src, mask, r">>>", after_lt)
        if not gt:
            raise SyntaxError("<<< without >>>")
        config = src[after_lt:gt[0]]
        paren = gt[1]
        while src[paren].isspace():
            paren += 1
        if src[paren] != "(":
            raise SyntaxError("launch without an argument list")
        close = match_forward(src, paren, "(", ")")
        args = src[paren + 1:close - 1]
        start = kernel_expression_start(src, lt)
        kernel = src[start:lt]
        call = "::cuemu::launch(__FILE__, __LINE__, ::cuemu::LaunchConfig(%s), %s%s)" % (
            config, kernel.strip(), (", " + args) if args.strip() else "")
        # Keep the line count: newlines of the kernel expression move to the end.
        call += "\n" * kernel.count("\n")
        src = src[:start] + call + src[close:]


def rewrite_shared(src):
    out, pos = [], 0
    mask = code_mask(src)
    pattern = re.compile(r"(extern\s+)?__shared__\s+(?:__align__\s*\(\s*\d+\s*\)\s+)?"
                         r"([A-Za-z_][\w:<>, ]*?)\s+(?:__align__\s*\(\s*\d+\s*\)\s+)?"
                         r"([A-Za-z_]\w*)\s*((?:\[[^\]]*\]\s*)*);")
    counter = 0
    for m in pattern.finditer(src):
        if not mask[m.start()]:
            continue
        out.append(src[pos:m.start()])
        is_extern, type_, name, dims = m.group(1), m.group(2).strip(), m.group(3), m.group(4)
        dims = re.sub(r"\s+", "", dims)
        if is_extern:
            if dims != "[]":
                raise SyntaxError("extern __shared__ %s must be an unsized array" % name)
            out.append("%s* %s = static_cast<%s*>(::cuemu::dynamic_shared_memory());"
                       % (type_, name, type_))
        else:
            counter += 1
            key = "cuemu_shared_key_%d_%s" % (counter, name)
            out.append("static char %s; auto& %s = ::cuemu::block_shared<%s%s>(&%s);"
                       % (key, name, type_, dims, key))
        out.append("\n" * m.group(0).count("\n"))
        pos = m.end()
    out.append(src[pos:])
    return "".join(out)


def rewrite_kernels(src):
    mask = code_mask(src)
    out, pos = [], 0
    for m in re.finditer(r"\b__global__\b", src):
        if not mask[m.start()]:
            continue
        # The body is the first '{' at parenthesis depth 0 (a ';' first: a declaration).
        i, depth, body = m.end(), 0, None
        while i < len(src):
            c = src[i]
            if mask[i]:
                if c == "(":
                    depth += 1
                elif c == ")":
                    depth -= 1
                elif depth == 0 and c == ";":
                    break
                elif depth == 0 and c == "{":
                    body = i
                    break
            i += 1
        if body is None:
            continue
        header = src[m.end():body]
        bounds = re.search(r"__launch_bounds__\s*\(", header)
        max_threads, min_blocks = "0", "0"
        if bounds:
            b0 = m.end() + bounds.end() - 1
            b1 = match_forward(src, b0, "(", ")")
            parts = [p.strip() for p in split_top_level(src[b0 + 1:b1 - 1])]
            max_threads = "(%s)" % parts[0]
            if len(parts) > 1:
                min_blocks = "(%s)" % parts[1]
        out.append(src[pos:body + 1])
        out.append(" CUEMU_KERNEL_PROLOGUE(%s, %s)" % (max_threads, min_blocks))
        pos = body + 1
    out.append(src[pos:])
    return "".join(out)


def rewrite(src):
    return rewrite_launches(rewrite_kernels(rewrite_shared(src)))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    source, target = sys.argv[1], sys.argv[2]
    with open(source, encoding="utf-8") as f:
        src = f.read()
    try:
        text = '#line 1 "%s"\n' % os.path.abspath(source) + rewrite(src)
    except SyntaxError as e:
        sys.exit("%s: cannot rewrite for the CUDA emulation: %s" % (source, e))
    if os.path.exists(target):
        with open(target, encoding="utf-8") as f:
            if f.read() == text:
                return
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    tmp = target + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, target)


if __name__ == "__main__":
    main()
