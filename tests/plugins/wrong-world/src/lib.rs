//! A well-formed component of some other world: weir must reject it by name and keep loading
//! the rest of the folder.

wit_bindgen::generate!({
    inline: r#"
        package acme:greeter@1.0.0;
        interface greet { hello: func(name: string) -> string; }
        world greeter { export greet; }
    "#,
});

struct Greeter;

impl exports::acme::greeter::greet::Guest for Greeter {
    fn hello(name: String) -> String {
        format!("hello, {name}")
    }
}

export!(Greeter);
