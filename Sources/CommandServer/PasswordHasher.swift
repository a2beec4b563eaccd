import Crypto
import _CryptoExtras
import Foundation

/// Passwords are stored as scrypt credentials: `scrypt$N$r$p$salt$key` (hex). scrypt is
/// slow and memory-hard on purpose (N = 2^14, r = 8: about 16 MiB and tens of ms).
public enum PasswordHasher {
    public static let minimumLength = 10

    public struct Refusal: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// A new credential for `password`, refusing passwords that are too short.
    public static func credential(for password: String, rounds: Int = 1 << 14) throws(Refusal) -> String {
        guard password.count >= minimumLength else {
            throw Refusal(description: "the password is too short: at least \(minimumLength) characters are needed")
        }
        var salt = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for i in salt.indices { salt[i] = UInt8.random(in: 0...255, using: &generator) }
        guard let key = derive(password, salt: salt, rounds: rounds, blockSize: 8, parallelism: 1) else {
            throw Refusal(description: "the password could not be hashed")
        }
        return "scrypt$\(rounds)$8$1$\(hex(salt))$\(hex(key))"
    }

    /// Whether `password` matches `credential`, in constant time over the derived key.
    public static func verify(_ password: String, against credential: String) -> Bool {
        let parts = credential.split(separator: "$").map(String.init)
        guard parts.count == 6, parts[0] == "scrypt", let n = Int(parts[1]), let r = Int(parts[2]), let p = Int(parts[3]),
              let salt = bytes(parts[4]), let expected = bytes(parts[5]),
              let key = derive(password, salt: salt, rounds: n, blockSize: r, parallelism: p) else { return false }
        guard key.count == expected.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(key, expected) { difference |= a ^ b }
        return difference == 0
    }

    static func derive(_ password: String, salt: [UInt8], rounds: Int, blockSize: Int, parallelism: Int) -> [UInt8]? {
        guard let key = try? KDF.Scrypt.deriveKey(from: Array(password.utf8), salt: salt, outputByteCount: 32, rounds: rounds,
                                                  blockSize: blockSize, parallelism: parallelism) else { return nil }
        return key.withUnsafeBytes { Array($0) }
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    static func bytes(_ hex: String) -> [UInt8]? {
        guard hex.count % 2 == 0 else { return nil }
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            result.append(byte)
            index = next
        }
        return result
    }
}
