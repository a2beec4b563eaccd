import Foundation

/// Text from outside, made safe to keep: control and format characters dropped and the
/// UTF-8 length capped on a scalar boundary. A cap in `Character`s would not do: one
/// character may carry thousands of combining marks. Used for every stored string a
/// caller chooses (audit fields, lease client names, calibration texts).
public enum StoredText {
    public static func capped(_ text: String, bytes: Int) -> String {
        var result = String.UnicodeScalarView()
        var used = 0
        for scalar in text.unicodeScalars {
            if scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format { continue }
            let size = String(scalar).utf8.count
            if used + size > bytes { break }
            used += size
            result.append(scalar)
        }
        return String(result)
    }
}
