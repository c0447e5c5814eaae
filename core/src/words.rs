//! Closed sets of words that cross a wire, a label or a file: one macro gives each such enum
//! its text, the list of values, `Display` and `FromStr`, so the spelling lives in one place.

use std::fmt;

/// Text that names no value of a [`words!`](crate::words) enum.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct UnknownWord {
    /// What the word should have named, e.g. `role`.
    pub what: &'static str,
    /// The text given.
    pub word: String,
    /// The words that are known.
    pub known: &'static [&'static str],
}

impl fmt::Display for UnknownWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} {:?} (one of: {})",
            self.what,
            self.word,
            self.known.join(", ")
        )
    }
}

/// Defines an enum of unit variants with a text each (`Variant = "text"`, or the variant's
/// name when the text is left out), and `ALL`, `TEXTS`, `as_str`, `Display`, `FromStr`
/// (error [`UnknownWord`]) and `From<Enum> for &'static str`.
///
/// ```
/// hsn_core::words! {
///     /// Colours.
///     pub enum Colour: "colour" {
///         /// Red.
///         Red = "red",
///         /// Blue.
///         Blue,
///     }
/// }
/// assert_eq!(Colour::Red.as_str(), "red");
/// assert_eq!("Blue".parse::<Colour>(), Ok(Colour::Blue));
/// assert_eq!(
///     "green".parse::<Colour>().unwrap_err().to_string(),
///     "unknown colour \"green\" (one of: red, Blue)"
/// );
/// ```
#[macro_export]
macro_rules! words {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident: $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident $(= $text:literal)?, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];
            /// Every value's text, in declaration order.
            pub const TEXTS: &'static [&'static str] =
                &[$($crate::words!(@text $variant $($text)?)),+];

            /// The text of this value.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $crate::words!(@text $variant $($text)?),)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::UnknownWord;

            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::UnknownWord {
                        what: $what,
                        word: s.to_owned(),
                        known: Self::TEXTS,
                    })
            }
        }

        impl ::std::convert::From<$name> for &'static str {
            fn from(v: $name) -> Self {
                v.as_str()
            }
        }
    };
    (@text $variant:ident $text:literal) => { $text };
    (@text $variant:ident) => { stringify!($variant) };
}
