/// An ISO 6346 container number: owner code (3 letters), category (U, J or Z), six
/// digits and a check digit, e.g. `CSQU3054383`.
public struct ContainerNumber: Sendable, Hashable, Codable, CustomStringConvertible {
    public let text: String

    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public let text: String
        public let reason: String
        public var description: String { "container number '\(text)': \(reason)" }

        public init(text: String, reason: String) {
            self.text = text
            self.reason = reason
        }
    }

    /// Validates `text` (spaces and lower case are accepted and normalised).
    public init(_ raw: String) throws(Invalid) {
        let text = raw.uppercased().filter { !$0.isWhitespace }
        let chars = Array(text)
        guard chars.count == 11 else {
            throw Invalid(text: raw, reason: "must be 11 characters (4 letters, 6 digits, 1 check digit), got \(chars.count)")
        }
        guard chars[0..<4].allSatisfy({ $0.isASCII && $0.isLetter }) else {
            throw Invalid(text: raw, reason: "the first four characters must be letters (owner code and category)")
        }
        guard "UJZ".contains(chars[3]) else {
            throw Invalid(text: raw, reason: "the fourth letter is the category and must be U, J or Z, not \(chars[3])")
        }
        guard chars[4..<11].allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw Invalid(text: raw, reason: "characters 5 to 11 must be digits")
        }
        let expected = Self.checkDigit(of: String(chars[0..<10]))
        let given = Int(String(chars[10])) ?? -1
        guard given == expected else {
            throw Invalid(text: raw, reason: "check digit is \(given), expected \(expected) for \(String(chars[0..<10]))")
        }
        self.text = text
    }

    public var description: String { text }

    /// ISO 6346 letter values: A = 10 upwards, skipping multiples of 11.
    static func value(of c: Character) -> Int {
        if let digit = c.wholeNumberValue { return digit }
        guard let ascii = c.asciiValue else { return 0 }
        var value = 10
        var letter = UInt8(ascii: "A")
        while letter < ascii {
            value += 1
            if value % 11 == 0 { value += 1 }
            letter += 1
        }
        return value
    }

    /// (Σ value × 2^position) mod 11, with 10 written as 0.
    public static func checkDigit(of firstTen: String) -> Int {
        var sum = 0
        for (i, c) in firstTen.enumerated() { sum += value(of: c) << i }
        return sum % 11 % 10
    }
}
