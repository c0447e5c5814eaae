//! Placeholder: this crate lands in a following commit.
