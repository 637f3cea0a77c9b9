//! Spring Data paging: `page`, `size` and `sort=property[,ASC|DESC]` in, the `Page` JSON out.
//!
//! Archive systems page through conversations and statuses with these exact names, so the shape
//! is copied field for field (`content`, `pageable`, `totalElements`, …).

use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use crate::store::{Page, PageRequest};

/// The paging parameters of a request.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PageParams {
    /// The page, from 0.
    pub page: Option<i64>,
    /// Items per page.
    pub size: Option<i64>,
    /// `property[,ASC|DESC]`.
    pub sort: Option<String>,
}

/// The largest page served.
const MAX_PAGE_SIZE: i64 = 2000;

impl PageParams {
    /// The store's page request; `columns` maps the sortable API properties to columns, and
    /// the default sort applies when none is asked for.
    pub fn request(
        &self,
        columns: &[(&str, &'static str)],
        default: (&'static str, bool),
    ) -> Result<PageRequest, ApiError> {
        let page = self.page.unwrap_or(0);
        let size = self.size.unwrap_or(10);
        if page < 0 {
            return Err(ApiError::bad_request(
                "IllegalArgumentException",
                "Page index must not be less than zero",
            ));
        }
        if size < 1 {
            return Err(ApiError::bad_request(
                "IllegalArgumentException",
                "Page size must not be less than one",
            ));
        }
        let (sort_column, descending) = match self.sort.as_deref().filter(|s| !s.is_empty()) {
            None => default,
            Some(sort) => {
                let mut parts = sort.split(',');
                let property = parts.next().unwrap_or_default().trim();
                let descending = match parts.next().map(|d| d.trim().to_ascii_uppercase()) {
                    None => false,
                    Some(direction) if direction == "ASC" => false,
                    Some(direction) if direction == "DESC" => true,
                    Some(direction) => {
                        return Err(ApiError::bad_request(
                            "IllegalArgumentException",
                            format!("Invalid sort direction {direction:?}"),
                        ));
                    }
                };
                let column = columns
                    .iter()
                    .find(|(name, _)| *name == property)
                    .map(|(_, column)| *column)
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "PropertyReferenceException",
                            format!("No property '{property}' found for sorting"),
                        )
                    })?;
                (column, descending)
            }
        };
        Ok(PageRequest {
            page,
            size: size.min(MAX_PAGE_SIZE),
            sort_column,
            descending,
        })
    }
}

/// The `Page` JSON for `page` of `request`, with each item rendered by `render`.
pub fn page_json<T>(
    page: &Page<T>,
    request: &PageRequest,
    sorted_by: Option<&str>,
    render: impl Fn(&T) -> Value,
) -> Value {
    let content: Vec<Value> = page.items.iter().map(render).collect();
    let total_pages = if page.total == 0 {
        0
    } else {
        (page.total + request.size - 1) / request.size
    };
    let sort = json!({
        "empty": sorted_by.is_none(),
        "sorted": sorted_by.is_some(),
        "unsorted": sorted_by.is_none(),
    });
    let count = content.len();
    json!({
        "content": content,
        "pageable": {
            "pageNumber": request.page,
            "pageSize": request.size,
            "sort": sort,
            "offset": request.page * request.size,
            "paged": true,
            "unpaged": false,
        },
        "last": request.page + 1 >= total_pages,
        "totalElements": page.total,
        "totalPages": total_pages,
        "first": request.page == 0,
        "size": request.size,
        "number": request.page,
        "sort": sort,
        "numberOfElements": count,
        "empty": count == 0,
    })
}
