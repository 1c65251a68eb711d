//! The invitation email: rendered from templates with auto-escaping. (being written)
