//! A component that imports nothing of the contract and does not export `transport`.
//!
//! Loading must refuse it, naming the export that is missing.

wit_bindgen::generate!({
    inline: r#"
        package acme:other@1.0.0;

        interface api {
            hello: func() -> string;
        }

        world other {
            export api;
        }
    "#,
});

struct Other;

impl exports::acme::other::api::Guest for Other {
    fn hello() -> String {
        "hello".to_owned()
    }
}

export!(Other);
