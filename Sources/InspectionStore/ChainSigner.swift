import Crypto
import Foundation

/// Signs the heads of the store's hash chains (each finished scan's seal, the audit
/// head) with an Ed25519 key kept in a file of its own, never in the database.
///
/// A hash chain alone shows an edit only to someone who did not recompute the chain
/// after it. A signature over the head shows it to anyone holding the public key, unless
/// the editor also holds the private key: on a deployed robot the key file belongs to
/// root alone (`docs/deploying` notes), so an editor with only the database (a copied
/// file, a maintenance laptop, the service account without the key) is caught. Against
/// an insider with the key, only a head held elsewhere (a printed report, the central
/// review service) helps: see `ScanStore.verify(anchors:)`.
public struct ChainSigner: Sendable {
    // Raw key bytes: swift-crypto's key types are not Sendable.
    private let privateKeyBytes: Data?
    private let publicKeyBytes: Data

    var privateKey: Curve25519.Signing.PrivateKey? {
        privateKeyBytes.flatMap { try? Curve25519.Signing.PrivateKey(rawRepresentation: $0) }
    }

    public var publicKey: Curve25519.Signing.PublicKey {
        // Checked when the signer was made, so this cannot fail.
        (try? Curve25519.Signing.PublicKey(rawRepresentation: publicKeyBytes)) ?? Curve25519.Signing.PrivateKey().publicKey
    }

    /// The first 16 hex digits of the SHA-256 of the public key: printed in reports and
    /// by `robotctl verify`, so a reader can tell which key signed a record.
    public var keyId: String { Self.keyId(publicKey) }

    static func keyId(_ key: Curve25519.Signing.PublicKey) -> String {
        String(SHA256.hash(data: key.rawRepresentation).map { String(format: "%02x", $0) }.joined().prefix(16))
    }

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Loads the key at `path`, or makes a new one there (mode 0600, created exclusively,
    /// so no other process sees a half-written key or a looser mode) when `create` is set.
    public init(keyPath path: String, create: Bool) throws(Failure) {
        if let data = FileManager.default.contents(atPath: path) {
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let raw = Data(base64Encoded: text), let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else {
                throw Failure(description: "the signing key \(path) is not a base64 Ed25519 private key (32 bytes)")
            }
            privateKeyBytes = key.rawRepresentation
            publicKeyBytes = key.publicKey.rawRepresentation
            return
        }
        guard create else { throw Failure(description: "no signing key at \(path)") }
        let key = Curve25519.Signing.PrivateKey()
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw Failure(description: "cannot create the signing key \(path): \(String(cString: strerror(errno)))")
        }
        let bytes = Array((key.rawRepresentation.base64EncodedString() + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == bytes.count else { throw Failure(description: "cannot write the signing key \(path)") }
        privateKeyBytes = key.rawRepresentation
        publicKeyBytes = key.publicKey.rawRepresentation
    }

    /// A verifier only, from a public key in hex (as `robotctl verify` prints it).
    public init(publicKeyHex: String) throws(Failure) {
        var bytes: [UInt8] = []
        var index = publicKeyHex.startIndex
        while index < publicKeyHex.endIndex {
            let next = publicKeyHex.index(index, offsetBy: 2, limitedBy: publicKeyHex.endIndex) ?? publicKeyHex.endIndex
            guard let byte = UInt8(publicKeyHex[index..<next], radix: 16) else {
                throw Failure(description: "the public key must be 64 hex digits")
            }
            bytes.append(byte)
            index = next
        }
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: bytes) else {
            throw Failure(description: "the public key must be 64 hex digits (32 bytes)")
        }
        privateKeyBytes = nil
        publicKeyBytes = key.rawRepresentation
    }

    public var publicKeyHex: String { publicKey.rawRepresentation.map { String(format: "%02x", $0) }.joined() }

    /// The signature over a chain head (its hex text), base64; empty without a private key.
    func sign(_ head: String) -> String {
        guard let privateKey, let signature = try? privateKey.signature(for: Data(head.utf8)) else { return "" }
        return signature.base64EncodedString()
    }

    func isValid(_ signature: String, for head: String) -> Bool {
        guard let data = Data(base64Encoded: signature) else { return false }
        return publicKey.isValidSignature(data, for: Data(head.utf8))
    }
}
