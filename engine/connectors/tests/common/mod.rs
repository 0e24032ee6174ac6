pub mod all_types;
