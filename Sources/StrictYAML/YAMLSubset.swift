/// The YAML our files are written in: block and flow mappings and sequences of plain or
/// quoted scalars, comments, block scalars. Two features are refused before the text
/// reaches Yams, because hostile input turns them into denial of service:
///
/// - anchors and aliases (`&name`, `*name`): Yams expands an alias by copying the node,
///   so a kilobyte of nested aliases becomes billions of nodes ("billion laughs");
/// - complex keys (`? key`): Yams sorts a mapping's keys to find duplicates, comparing
///   nested keys recursively; libFuzzer found a 2.4 KB scenario of nested complex keys
///   that took over 5 s.
///
/// A small scanner, not a parser: it follows quotes, comments, flow brackets and block
/// scalars well enough to look only where a node can begin.
enum YAMLSubset {
    struct Refusal {
        let line: Int
        let column: Int
        let message: String
    }

    static func check(_ text: String) -> Refusal? {
        var flowDepth = 0
        var quote: Character?  // inside a quoted scalar, which may run over lines
        var blockScalarIndent: Int?  // inside a `|` or `>` block scalar started at this indentation
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = Array(rawLine)
            let indent = line.prefix { $0 == " " }.count
            if let started = blockScalarIndent {
                if line.allSatisfy({ $0 == " " || $0 == "\r" }) || indent > started { continue }
                blockScalarIndent = nil
            }
            var atNodeStart = quote == nil
            var i = 0
            while i < line.count {
                let c = line[i]
                let next: Character? = i + 1 < line.count ? line[i + 1] : nil
                let nextIsBlank = next == nil || next == " " || next == "\t" || next == "\r"
                if let open = quote {
                    if open == "\"" && c == "\\" {
                        i += 2
                        continue
                    }
                    if c == open {
                        if open == "'" && next == "'" {
                            i += 2
                            continue
                        }
                        quote = nil
                    }
                    i += 1
                    continue
                }
                if c == "#" && (i == 0 || line[i - 1] == " " || line[i - 1] == "\t") { break }
                if c == " " || c == "\t" || c == "\r" {
                    i += 1
                    continue
                }
                let wasAtNodeStart = atNodeStart
                if atNodeStart {
                    switch c {
                    case "&", "*":
                        return Refusal(line: lineNumber, column: i + 1, message: "anchors and aliases ('&name', '*name') are not allowed here; write the value out")
                    case "?" where nextIsBlank:
                        return Refusal(line: lineNumber, column: i + 1, message: "complex keys ('? key') are not allowed; keys are plain words")
                    case "-" where nextIsBlank:
                        i += 1
                        continue  // a sequence entry: its node starts next
                    case "\"", "'":
                        quote = c
                        atNodeStart = false
                        i += 1
                        continue
                    default:
                        break
                    }
                }
                atNodeStart = false
                if c == ":" && (nextIsBlank || (flowDepth > 0 && (next == "," || next == "]" || next == "}"))) {
                    atNodeStart = true
                } else if c == "[" || c == "{" {
                    flowDepth += 1
                    atNodeStart = true
                } else if c == "]" || c == "}" {
                    flowDepth = max(0, flowDepth - 1)
                } else if c == "," && flowDepth > 0 {
                    atNodeStart = true
                } else if (c == "|" || c == ">") && wasAtNodeStart && flowDepth == 0 && Self.startsBlockScalar(line, at: i) {
                    blockScalarIndent = indent
                    break
                }
                i += 1
            }
        }
        return nil
    }

    /// `|` or `>` (with optional chomping and indentation indicators) ending the line as a
    /// node's value: the lines indented below it are text.
    private static func startsBlockScalar(_ line: [Character], at index: Int) -> Bool {
        var j = index + 1
        while j < line.count, "+-0123456789".contains(line[j]) { j += 1 }
        while j < line.count, line[j] == " " || line[j] == "\t" || line[j] == "\r" { j += 1 }
        return j == line.count || line[j] == "#"
    }
}
